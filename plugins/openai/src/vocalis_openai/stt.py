"""Speech-to-text over the transcriptions endpoint (``POST /audio/transcriptions``).

The endpoint takes a whole audio file, so this provider is non-streaming: the
pipeline segments speech with its VAD and hands each utterance to
:meth:`OpenAISTT.recognize`, which uploads it as a 16 kHz mono WAV built in
memory. Works with OpenAI and with OpenAI-compatible servers (e.g. a local
faster-whisper or whisper.cpp server) through ``base_url``.
"""

from __future__ import annotations

import io
import math
import wave
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from loguru import logger
from pydantic import Field

from vocalis.audio import AudioFrame, AudioResampler, concat
from vocalis.providers.stt import STT, SpeechEvent, SpeechEventType
from vocalis.settings import provider_settings_config
from vocalis_openai.client import OpenAIClientMixin, OpenAISettings, provider_error

MIN_SECONDS = 0.1
"""The API rejects shorter audio; such a snippet holds no words anyway."""

SILENT_PEAK = 32
"""Audio never louder than this (-60 dBFS) is digital silence, e.g. a muted
microphone or resampled zeros: skipped, since Whisper-style models tend to
invent a phrase for it."""

# Whisper's own thresholds for a segment that is silence decoded as words
# (its classic "Thank you." on an empty segment).
_NO_SPEECH_PROB = 0.6
_LOW_LOGPROB = -1.0


class OpenAISTT(OpenAIClientMixin, STT):
    """Transcribes utterances with ``gpt-4o-mini-transcribe``, ``whisper-1`` & co.

    Each call to :meth:`recognize` is one paid request, so silence and empty
    segments are answered locally, and interim results (one request per
    second of speech while the user talks) are off unless ``interims`` is set.
    """

    name: ClassVar[str] = "openai"
    sdk_modules: ClassVar[tuple[str, ...]] = ("openai.resources.audio.audio",)
    sample_rate: ClassVar[int] = 16_000
    streaming: ClassVar[bool] = False

    class Settings(OpenAISettings):
        """Settings, read from ``VOCALIS_STT_OPENAI_*``.

        Attributes:
            model: The transcription model.
            language: ISO-639-1 code of the speech (e.g. ``en``); None lets
                the model detect it. A language passed to ``recognize`` wins.
            prompt: Text that guides spelling and style (names, jargon).
            temperature: Sampling temperature, 0..1 (None: the server's).
            response_format: ``json``, ``verbose_json`` (Whisper models:
                adds the language and per-segment confidence, used to drop
                text decoded from silence) or ``text``; ``auto`` picks
                ``verbose_json`` for ``whisper*`` models and ``json``
                otherwise (the only format the gpt-4o models accept).
            interims: Transcribe the utterance so far about once a second
                while the user speaks, for interim results. Each is a
                billed request.
        """

        model_config = provider_settings_config("stt", "openai")

        model: str = "gpt-4o-mini-transcribe"
        language: str | None = None
        prompt: str | None = None
        temperature: float | None = Field(default=None, ge=0.0, le=1.0)
        response_format: Literal["auto", "json", "verbose_json", "text"] = "auto"
        interims: bool = False

    settings: Settings

    async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        """Transcribe one utterance.

        Args:
            frames: The utterance, at any rate and channel count.
            language: Overrides the ``language`` setting for this call.

        Returns:
            A ``FINAL_TRANSCRIPT``; empty text, without a request, when the
            audio is empty, shorter than 0.1 s or digital silence.

        Raises:
            ProviderError: The request failed (recoverable for timeouts,
                dropped connections, 429 and 5xx); ``kind`` says how
                (``TIMEOUT``, ``CONNECTION``, ``AUTH``, ``RATE_LIMIT``,
                ``BAD_REQUEST``, ``SERVER``, ...).
        """
        language = language or self.settings.language
        audio = self._prepare(frames)
        if audio is None or audio.duration < MIN_SECONDS or _peak(audio) <= SILENT_PEAK:
            return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, "", language=language)
        response_format = self._response_format()
        request: dict[str, Any] = {
            "file": ("speech.wav", to_wav(audio), "audio/wav"),
            "model": self.settings.model,
            "response_format": response_format,
        }
        optional = {
            "language": language,
            "prompt": self.settings.prompt,
            "temperature": self.settings.temperature,
        }
        request.update({key: value for key, value in optional.items() if value is not None})
        logger.debug("{}: transcribing {:.2f} s with {}", self.label, audio.duration, self.settings.model)
        try:
            result = await self.client.audio.transcriptions.create(**request)
        except Exception as exc:
            # Not streamed: the SDK reads the whole reply within the request.
            raise provider_error(self, exc, started=False) from exc
        return _event(result, language, audio.duration)

    async def recognize_interim(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        """Transcribe the utterance so far, or return empty text when ``interims`` is off.

        The pipeline drops empty interims, so with ``interims`` off no
        request is made and no interim is shown.
        """
        if not self.settings.interims:
            return SpeechEvent(SpeechEventType.INTERIM_TRANSCRIPT, "", language=language)
        event = await self.recognize(frames, language=language)
        event.type = SpeechEventType.INTERIM_TRANSCRIPT
        return event

    def _prepare(self, frames: Sequence[AudioFrame]) -> AudioFrame | None:
        """Join the frames as mono at :attr:`sample_rate`, resampling as needed."""
        resampler = AudioResampler(self.sample_rate, 1)
        parts = [resampler.push(frame) for frame in frames if frame.samples_per_channel]
        parts.append(resampler.flush())
        return concat([part for part in parts if part is not None and part.samples_per_channel])

    def _response_format(self) -> str:
        chosen = self.settings.response_format
        if chosen != "auto":
            return chosen
        return "verbose_json" if self.settings.model.startswith("whisper") else "json"


def to_wav(audio: AudioFrame) -> bytes:
    """A complete 16-bit PCM WAV file holding ``audio``."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(audio.channels)
        wav.setsampwidth(2)
        wav.setframerate(audio.sample_rate)
        wav.writeframes(audio.data)
    return buffer.getvalue()


def _event(result: Any, language: str | None, duration: float) -> SpeechEvent:
    """Turn a ``json``, ``verbose_json`` or ``text`` response into a final transcript."""
    if isinstance(result, str):
        return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, result.strip(), language=language, end_time=duration)
    text = str(getattr(result, "text", "") or "")
    confidence = 1.0
    segments = getattr(result, "segments", None)
    if segments:
        spoken = [s for s in segments if not _is_silence(s)]
        text = "".join(s.text for s in spoken)
        if spoken:
            mean = sum(s.avg_logprob for s in spoken) / len(spoken)
            confidence = min(1.0, max(0.0, math.exp(mean)))
    detected = getattr(result, "language", None)
    languages = getattr(result, "languages", None)
    if not detected and languages:
        detected = languages[0].code
    return SpeechEvent(
        SpeechEventType.FINAL_TRANSCRIPT,
        text.strip(),
        confidence=confidence,
        language=language or detected or None,
        end_time=duration,
    )


def _peak(audio: AudioFrame) -> int:
    samples = audio.to_numpy()
    return int(max(samples.max(), -int(samples.min())))


def _is_silence(segment: Any) -> bool:
    return bool(segment.no_speech_prob > _NO_SPEECH_PROB and segment.avg_logprob < _LOW_LOGPROB)
