"""ExampleSTT: reads back the beeps of :class:`~vocalis_example.tts.ExampleTTS` as text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from pydantic import Field

from vocalis.audio import AudioFormatError, AudioFrame, concat, resample
from vocalis.providers.base import ErrorKind
from vocalis.providers.stt import STT, SpeechEvent, SpeechEventType
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis_example.tones import character

HOP_SECONDS = 0.005
"""Resolution of the beep/silence decision."""

MIN_BEEP_SECONDS = 0.02
"""Shorter bursts are clicks or the cut-off edge of a segment, not characters."""


class ExampleSTT(STT):
    """A speech-to-text provider that needs no model: decodes the tone code.

    Batch only (``streaming = False``): it implements :meth:`recognize`, and
    the pipeline cuts the user's audio into utterances with its VAD and calls
    it once per utterance (and on the utterance so far, for interim results).
    """

    name: ClassVar[str] = "example"
    sample_rate: ClassVar[int] = 16_000
    streaming: ClassVar[bool] = False

    class Settings(ProviderSettings):
        """Environment variables ``VOCALIS_STT_EXAMPLE_<FIELD>``."""

        model_config = provider_settings_config("stt", "example")
        threshold: int = Field(1000, gt=0, lt=32768, description="Peak amplitude above which audio is a beep.")
        word_gap_seconds: float = Field(0.09, gt=0.0, description="A silence longer than this ends a word.")
        language: str = "en"

    async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        """Decode one utterance. Audio at any sample rate is accepted.

        Raises:
            ProviderError: The frames mix sample rates or channel counts
                (kind ``BAD_REQUEST``, not recoverable: a retry fails alike).
        """
        settings = self.settings
        assert isinstance(settings, ExampleSTT.Settings)
        language = language or settings.language
        try:
            joined = concat(list(frames))
        except AudioFormatError as exc:
            raise self.error(str(exc), recoverable=False, kind=ErrorKind.BAD_REQUEST) from exc
        if joined is None:
            return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, "", language=language)
        # Beep pitches end below 2.7 kHz, so 16 kHz keeps them all; one rate
        # keeps the decoder's thresholds in one unit.
        if joined.channels > 1:
            joined = joined.to_mono()
        if joined.sample_rate != self.sample_rate:
            joined = resample(joined, self.sample_rate)
        text = self._decode(joined.to_numpy().astype(np.float64), settings)
        return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, text, language=language, end_time=joined.duration)

    def _decode(self, samples: np.ndarray[tuple[int], np.dtype[np.float64]], settings: Settings) -> str:
        rate = self.sample_rate
        hop = int(rate * HOP_SECONDS)
        blocks = len(samples) // hop
        if not blocks:
            return ""
        peaks = np.abs(samples[: blocks * hop]).reshape(blocks, hop).max(axis=1)
        loud = np.concatenate([[False], peaks > settings.threshold, [False]])
        edges = np.flatnonzero(np.diff(loud.astype(np.int8)))
        text: list[str] = []
        last_end: int | None = None
        for start, end in zip(edges[::2], edges[1::2], strict=True):
            if (end - start) * HOP_SECONDS < MIN_BEEP_SECONDS:
                continue
            char = character(_pitch(samples[start * hop : end * hop], rate))
            if char is None:
                continue
            if last_end is not None and (start - last_end) * HOP_SECONDS > settings.word_gap_seconds:
                text.append(" ")
            text.append(char)
            last_end = end
        return "".join(text)


def _pitch(beep: np.ndarray[tuple[int], np.dtype[np.float64]], rate: int) -> float:
    """The strongest frequency of one beep, to a fraction of an FFT bin."""
    # The middle of the beep: its edges are ramps, and resampling smears them.
    trim = len(beep) // 5
    core = beep[trim : len(beep) - trim] * np.hanning(len(beep) - 2 * trim)
    size = 1 << max(13, int(np.ceil(np.log2(len(core)))))  # zero padding: finer bins
    spectrum = np.abs(np.fft.rfft(core, size))
    peak = int(np.argmax(spectrum[1:-1])) + 1
    left, centre, right = spectrum[peak - 1 : peak + 2]
    # Parabolic interpolation between the three bins around the peak.
    denominator = left - 2 * centre + right
    offset = 0.5 * (left - right) / denominator if denominator else 0.0
    return float((peak + offset) * rate / size)
