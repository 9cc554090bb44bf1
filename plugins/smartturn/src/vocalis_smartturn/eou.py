"""The Smart Turn end-of-turn provider."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import Field

from vocalis.audio import AudioFrame, resample
from vocalis.providers.eou import EOU
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis_smartturn import model as smart_model
from vocalis_smartturn.features import SAMPLE_RATE, WINDOW_SECONDS, trim_trailing_silence

if TYPE_CHECKING:
    from vocalis.chat import ChatContext

NO_AUDIO_PROBABILITY = 0.5
"""What :meth:`SmartTurnEOU.predict` returns without audio: the model cannot
judge, so it answers "undecided" and the pipeline's delay sits mid-range."""

_KEEP_BEFORE_TRIM = 4.0  # seconds of tail kept beyond the window before trimming silence


class SmartTurnEOU(EOU):
    """Smart Turn v3.2: decides from the *sound* of the user's last 8 s of speech.

    The audio model hears intonation and trailing words ("for...", "and
    um") rather than reading the transcript, so it needs the turn's audio
    (``uses_audio``) and ignores the chat context. The model is loaded once
    per process and runs on one shared worker thread.
    """

    name: ClassVar[str] = "smartturn"
    uses_audio: ClassVar[bool] = True
    sample_rate: ClassVar[int] = SAMPLE_RATE

    class Settings(ProviderSettings):
        """Settings, read from ``VOCALIS_EOU_SMARTTURN_*``.

        Attributes:
            model_path: A Smart Turn v3 ``.onnx`` file; None uses
                ``smart-turn-v3.2-cpu.onnx`` from the installed pipecat-ai.
            threshold: Probability from which :meth:`SmartTurnEOU.is_complete`
                calls a turn complete. Informational: the pipeline's
                ``EOUConfig`` turns probabilities into delays itself.
            onnx_threads: onnxruntime intra-op threads per prediction.
            trailing_silence: Keep at most this many seconds of quiet after
                the last speech (None: judge the audio as given). Smart Turn
                is tuned for a VAD that stops ~0.2 s after speech; a longer
                hang-over in the audio pushes every score towards "complete".
        """

        model_config = provider_settings_config("eou", "smartturn")

        model_path: str | None = None
        threshold: float = Field(0.5, ge=0.0, le=1.0)
        onnx_threads: int = Field(1, ge=1, le=16)
        trailing_silence: float | None = Field(0.2, ge=0.0, le=8.0)

    settings: Settings

    @property
    def model_name(self) -> str | None:
        """The model file's name without extension."""
        path = self.settings.model_path
        return Path(path).stem if path else Path(smart_model.MODEL_RELATIVE_PATH).stem

    def _load(self) -> smart_model.SmartTurnModel:
        try:
            return smart_model.load(self.settings.model_path, self.settings.onnx_threads)
        except smart_model.ModelNotFoundError as exc:
            raise self.error(str(exc), recoverable=False) from exc

    async def prewarm(self) -> None:
        """Load the model (once per process) off the event loop."""
        await asyncio.to_thread(self._load)

    def is_complete(self, probability: float) -> bool:
        """Whether ``probability`` reaches the configured ``threshold``."""
        return probability >= self.settings.threshold

    async def predict(self, chat_ctx: ChatContext, *, audio: AudioFrame | None = None) -> float:
        """Probability that the user finished their turn, judged from ``audio``.

        Args:
            chat_ctx: Ignored: the model listens, it does not read.
            audio: The user's latest speech, any rate and channel count;
                only the last 8 s count. None or empty returns
                :data:`NO_AUDIO_PROBABILITY` (0.5).

        Raises:
            ProviderError: The model is missing or inference failed.
        """
        if audio is None or audio.samples_per_channel == 0:
            return NO_AUDIO_PROBABILITY
        loop = asyncio.get_running_loop()
        # Loading (first call only), resampling, features (~5 ms) and the model
        # (~45 ms) all run on the model's worker thread, never on the loop.
        return await loop.run_in_executor(smart_model.executor(), self._infer, audio)

    def _infer(self, audio: AudioFrame) -> float:
        model = self._load()
        try:
            return model.probability(to_model_audio(audio, self.settings.trailing_silence))
        except Exception as exc:
            raise self.error(f"inference failed: {type(exc).__name__}: {exc}") from exc


def to_model_audio(audio: AudioFrame, trailing_silence: float | None = None) -> np.ndarray:
    """16 kHz mono float32 (-1..1) audio for the model.

    Args:
        audio: Any rate and channel count.
        trailing_silence: Seconds of quiet to keep after the last speech
            (None keeps all).

    Returns:
        At most the last 8 s (after trimming).
    """
    mono = audio.to_mono()
    keep = WINDOW_SECONDS + _KEEP_BEFORE_TRIM  # bounds the resampling work
    if mono.duration > keep:
        mono = mono.slice_from(mono.duration - keep)
    samples = resample(mono, SAMPLE_RATE).to_numpy().astype(np.float32) / 32768.0
    if trailing_silence is not None:
        samples = trim_trailing_silence(samples, trailing_silence)
    return samples[-WINDOW_SECONDS * SAMPLE_RATE :]
