"""ExampleTTS: speaks text as a beep per character (see :mod:`vocalis_example.tones`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import ClassVar

import numpy as np
from pydantic import Field

from vocalis.audio import AudioFrame
from vocalis.providers.tts import TTS
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis_example.tones import frequency, words

FRAME_SECONDS = 0.02
"""Audio is sent in 20 ms frames, a transport's usual size."""


class ExampleTTS(TTS):
    """A text-to-speech provider that needs no model: one beep per character.

    Only :meth:`synthesize` is implemented; the base class's ``stream()``
    cuts streamed text into sentences and calls it once per sentence.
    """

    name: ClassVar[str] = "example"
    sample_rate: ClassVar[int] = 16_000
    channels: ClassVar[int] = 1

    class Settings(ProviderSettings):
        """Environment variables ``VOCALIS_TTS_EXAMPLE_<FIELD>``."""

        model_config = provider_settings_config("tts", "example")
        volume: float = Field(0.3, gt=0.0, le=1.0, description="Peak amplitude, 0..1 of full scale.")
        beep_seconds: float = Field(0.06, ge=0.03, le=0.5, description="Length of one character's beep.")
        gap_seconds: float = Field(0.03, ge=0.01, le=0.06, description="Silence between beeps of a word.")
        word_gap_seconds: float = Field(0.15, ge=0.12, le=0.25, description="Silence between words.")

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        """Speak ``text``; nothing at all when it has no speakable character.

        Yields:
            Mono int16 frames of 20 ms at :attr:`sample_rate`.
        """
        samples = self._render(text)
        step = int(self.sample_rate * FRAME_SECONDS)
        for start in range(0, len(samples), step):
            yield AudioFrame(samples[start : start + step].tobytes(), self.sample_rate)
            # Hand the loop back between frames: a reader that closes or is
            # cancelled stops synthesis at the next frame, not at the end.
            await asyncio.sleep(0)

    def _render(self, text: str) -> np.ndarray[tuple[int], np.dtype[np.int16]]:
        settings = self.settings
        assert isinstance(settings, ExampleTTS.Settings)
        rate = self.sample_rate
        beep = np.arange(int(rate * settings.beep_seconds)) / rate
        # Raised-cosine edges (5 ms): a beep that starts at full volume clicks.
        ramp = min(len(beep) // 2, int(rate * 0.005))
        envelope = np.ones(len(beep))
        envelope[:ramp] = envelope[len(beep) - ramp :][::-1] = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        gap = np.zeros(int(rate * settings.gap_seconds))
        word_gap = np.zeros(int(rate * settings.word_gap_seconds))
        parts: list[np.ndarray[tuple[int], np.dtype[np.float64]]] = []
        for index, word in enumerate(words(text)):
            if index:
                parts.append(word_gap)
            for position, char in enumerate(word):
                if position:
                    parts.append(gap)
                parts.append(envelope * np.sin(2 * np.pi * frequency(char) * beep))
        if not parts:
            return np.zeros(0, dtype=np.int16)
        # A streamed reply is synthesised a sentence per call: the trailing
        # pause keeps the last word of one from running into the next.
        parts.append(word_gap)
        return (np.concatenate(parts) * settings.volume * 32767).astype(np.int16)
