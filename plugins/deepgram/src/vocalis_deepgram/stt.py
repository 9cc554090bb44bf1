"""Speech-to-text over Deepgram's ``/v1/listen``: live over a WebSocket, or one request per utterance.

:meth:`DeepgramSTT.stream` opens the live WebSocket (see
:mod:`vocalis_deepgram.stt_stream`): raw 16 kHz linear16 audio in, interim
and final results, speech boundaries and utterance ends out.
:meth:`DeepgramSTT.recognize` sends a finished utterance to the pre-recorded
endpoint (``POST /v1/listen`` with a WAV body), so the provider also works
where a one-shot recogniser is needed, e.g. inside :class:`FallbackSTT`.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Sequence
from typing import Any, ClassVar

from loguru import logger
from pydantic import Field, SecretStr, field_validator

from vocalis.audio import AudioFrame, AudioResampler, concat
from vocalis.providers.base import ErrorKind
from vocalis.providers.stt import STT, SpeechEvent, SpeechEventType, STTStream
from vocalis_deepgram.client import (
    DeepgramClientMixin,
    DeepgramSettings,
    QueryValue,
    api_key_field,
    settings_config,
)
from vocalis_deepgram.errors import exception_error, status_error

MIN_SECONDS = 0.05
"""Shorter audio holds no word: no request is made for it."""

SILENT_PEAK = 32
"""Audio never louder than this (-60 dBFS) is digital silence (a muted
microphone): no request is made for it."""


class DeepgramSTT(DeepgramClientMixin, STT):
    """Deepgram speech-to-text (Nova models), streaming over the live WebSocket."""

    name: ClassVar[str] = "deepgram"
    sample_rate: ClassVar[int] = 16_000
    streaming: ClassVar[bool] = True

    class Settings(DeepgramSettings):
        """Settings, read from ``VOCALIS_STT_DEEPGRAM_*`` (the environment or ``.env``).

        The connection settings (``api_key``, also read from
        ``DEEPGRAM_API_KEY``; ``base_url``; ``timeout``) are those of
        :class:`~vocalis_deepgram.client.DeepgramSettings`.

        Attributes:
            model: The model (``nova-3``, ``nova-2``, ``nova-3-medical``, ...).
            language: BCP-47 code (``en``, ``en-US``, ``multi`` for Nova-3's
                multilingual mode); None leaves it to the model. A language
                passed to ``stream``/``recognize`` wins.
            interim_results: Ask for interim results while the user speaks.
            endpointing: Milliseconds of silence after which Deepgram ends
                an utterance (``speech_final``); None turns it off.
            utterance_end_ms: Send ``UtteranceEnd`` after this gap after the
                last word (1000 at least; needs interim results); None: off.
            vad_events: Ask for ``SpeechStarted`` messages.
            smart_format: Format numbers, dates, currency and the like.
            punctuate: Add punctuation and capitals.
            keyterms: Words to boost (Nova-3 ``keyterm`` prompting).
            extra_params: Further query parameters, sent as given.
            keepalive_interval: Seconds without audio after which a
                ``KeepAlive`` is sent (Deepgram closes after 10 s of nothing).
            finalize_timeout: Seconds to wait for the answer to a
                ``Finalize`` (sent when the VAD ends a segment); Deepgram
                sends none when it holds no audio, and the segment then gets
                what is final so far.
            close_timeout: Seconds to wait, after ``CloseStream``, for the
                last results and the server's close.
            max_reconnects: Reconnections in a row after a recoverable drop
                before the stream fails.
            reconnect_delay: Seconds before the first reconnection (doubled
                on each further one, up to 5 s).
            max_replay_seconds: Audio kept for a resend after a drop, at most.
        """

        model_config = settings_config("stt")

        api_key: SecretStr | None = api_key_field("stt")

        model: str = "nova-3"
        language: str | None = "en"
        interim_results: bool = True
        endpointing: int | None = Field(300, ge=0)
        utterance_end_ms: int | None = Field(1000, ge=1000)
        vad_events: bool = True
        smart_format: bool = True
        punctuate: bool = True
        keyterms: list[str] = Field(default_factory=list)
        extra_params: dict[str, str] = Field(default_factory=dict)
        keepalive_interval: float = Field(4.0, gt=0, le=9.0)
        finalize_timeout: float = Field(1.5, gt=0)
        close_timeout: float = Field(5.0, gt=0)
        max_reconnects: int = Field(3, ge=0, le=20)
        reconnect_delay: float = Field(0.25, ge=0)
        max_replay_seconds: float = Field(30.0, gt=0)

        @field_validator("endpointing", mode="before")
        @classmethod
        def _off(cls, value: object) -> object:
            # Deepgram spells "off" endpointing=false; accept that spelling here too.
            return None if value is False or (isinstance(value, str) and value.lower() == "false") else value

        @field_validator("utterance_end_ms")
        @classmethod
        def _needs_interims(cls, value: int | None, info: Any) -> int | None:
            if value is not None and info.data.get("interim_results") is False:
                raise ValueError("utterance_end_ms needs interim_results (Deepgram derives it from them)")
            return value

    settings: Settings

    # -- live ---------------------------------------------------------------------------
    def stream(self, *, language: str | None = None) -> STTStream:
        """Open a live recognition stream (its WebSocket connects right away).

        Args:
            language: Overrides the ``language`` setting for this stream.

        Returns:
            The stream: push 16 kHz frames, ``flush()`` at the end of each
            speech segment, read interim and final transcripts.
        """
        from vocalis_deepgram.stt_stream import DeepgramSTTStream

        return DeepgramSTTStream(self, language=language or self.settings.language)

    def live_params(self, language: str | None) -> dict[str, QueryValue | None]:
        """The query parameters of the live WebSocket."""
        s = self.settings
        params: dict[str, QueryValue | None] = {
            "model": s.model,
            "encoding": "linear16",
            "sample_rate": self.sample_rate,
            "channels": 1,
            "interim_results": s.interim_results,
            "endpointing": s.endpointing if s.endpointing is not None else False,
            "utterance_end_ms": s.utterance_end_ms,
            "vad_events": s.vad_events,
            "smart_format": s.smart_format,
            "punctuate": s.punctuate,
            "language": language,
            "keyterm": list(s.keyterms) or None,
        }
        params.update(s.extra_params)
        return params

    # -- one utterance -----------------------------------------------------------------
    async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        """Transcribe one finished utterance with the pre-recorded endpoint.

        Args:
            frames: The utterance, at any rate and channel count.
            language: Overrides the ``language`` setting for this call.

        Returns:
            A ``FINAL_TRANSCRIPT``; empty text, without a request, for no
            audio, a snippet too short to hold a word, or digital silence.

        Raises:
            ProviderError: The request failed (recoverable for timeouts,
                dropped connections, 429 and 5xx; ``kind`` says how).
        """
        language = language or self.settings.language
        audio = _prepare(frames, self.sample_rate)
        if audio is None or audio.duration < MIN_SECONDS or _peak(audio) <= SILENT_PEAK:
            return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, "", language=language)
        s = self.settings
        params: dict[str, QueryValue | None] = {
            "model": s.model,
            "smart_format": s.smart_format,
            "punctuate": s.punctuate,
            "language": language,
            "keyterm": list(s.keyterms) or None,
        }
        headers = {**self.auth_headers(), "Content-Type": "audio/wav"}
        logger.debug("{}: transcribing {:.2f} s with {}", self.label, audio.duration, s.model)
        try:
            async with self.http().post(
                self.http_url("/v1/listen", params), data=to_wav(audio), headers=headers, timeout=self._timeout()
            ) as response:
                if response.status >= 400:
                    raise status_error(self, response.status, await response.read(), response.headers)
                body = await response.json(content_type=None)
        except Exception as exc:
            raise exception_error(self, exc, started=False) from exc
        return self._event(body, language, audio.duration)

    def _timeout(self) -> Any:
        import aiohttp

        return aiohttp.ClientTimeout(total=None, sock_connect=self.settings.timeout, sock_read=self.settings.timeout)

    def _event(self, body: object, language: str | None, duration: float) -> SpeechEvent:
        """The final transcript of a pre-recorded reply (``results.channels[0].alternatives[0]``)."""
        try:
            channel = body["results"]["channels"][0]  # type: ignore[index]
            alternatives = channel["alternatives"]
            best = alternatives[0] if alternatives else {}  # none: nothing was heard
            text = str(best.get("transcript") or "")
            # null (or absent) when the service has no score for it.
            score = best.get("confidence")
            confidence = 1.0 if score is None else float(score)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise self.error("malformed reply: no results.channels[0].alternatives", kind=ErrorKind.PROTOCOL) from None
        detected = channel.get("detected_language") if isinstance(channel, dict) else None
        return SpeechEvent(
            SpeechEventType.FINAL_TRANSCRIPT,
            text.strip(),
            confidence=min(1.0, max(0.0, confidence)),
            language=language if language and language != "multi" else (detected or language),
            end_time=duration,
        )

    async def prewarm(self) -> None:
        """Check the key and leave a warm connection for the first request."""
        await self.check_key()

    async def aclose(self) -> None:
        """Close the HTTP session. Idempotent (streams close on their own)."""
        await self.close_http()


def _prepare(frames: Sequence[AudioFrame], sample_rate: int) -> AudioFrame | None:
    """Join the frames as mono at ``sample_rate``, resampling as needed."""
    resampler = AudioResampler(sample_rate, 1)
    parts = [resampler.push(frame) for frame in frames if frame.samples_per_channel]
    parts.append(resampler.flush())
    return concat([part for part in parts if part is not None and part.samples_per_channel])


def to_wav(audio: AudioFrame) -> bytes:
    """A complete 16-bit PCM WAV file holding ``audio``."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(audio.channels)
        wav.setsampwidth(2)
        wav.setframerate(audio.sample_rate)
        wav.writeframes(audio.data)
    return buffer.getvalue()


def _peak(audio: AudioFrame) -> int:
    samples = audio.to_numpy()
    return int(max(int(samples.max()), -int(samples.min())))
