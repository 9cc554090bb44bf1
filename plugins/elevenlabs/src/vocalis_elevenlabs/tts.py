"""The ``elevenlabs`` TTS provider: its settings, one-shot synthesis and streams."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, ClassVar, Literal

import aiohttp
from loguru import logger
from pydantic import AliasChoices, Field, SecretStr, field_validator

from vocalis.audio import AudioFrame
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.tts import TTS
from vocalis.settings import ProviderSettings, provider_env_prefix, provider_settings_config
from vocalis.text import speakable, split_text
from vocalis_elevenlabs import protocol
from vocalis_elevenlabs.errors import http_error, missing_key_error, network_error
from vocalis_elevenlabs.http import error_body, speak_http
from vocalis_elevenlabs.protocol import OutputFormat
from vocalis_elevenlabs.stream import ElevenLabsStream

DEFAULT_BASE_URL = "https://api.elevenlabs.io"
KEY_ENV = "ELEVENLABS_API_KEY"
"""The variable read when ``VOCALIS_TTS_ELEVENLABS_API_KEY`` is not set."""
DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb"
"""A premade voice every account has ("George")."""

# After the WebSocket was found unusable (``auto`` mode), streams go over
# HTTP for this long before the socket is tried again.
_WEBSOCKET_RETRY_SECONDS = 300.0

# Characters one HTTP request may hold, by model (the "API - Error Code 400
# or 401" help article, ``max_character_limit_exceeded``); longer texts are
# sent in several requests. Models not listed get the lowest documented limit.
_MAX_CHARS = {
    "eleven_flash_v2_5": 40_000,
    "eleven_turbo_v2_5": 40_000,
    "eleven_flash_v2": 30_000,
    "eleven_turbo_v2": 30_000,
    "eleven_multilingual_v2": 10_000,
}
_DEFAULT_MAX_CHARS = 5_000


class ElevenLabsTTS(TTS):
    """Speaks with ElevenLabs: text streamed in over a WebSocket, PCM streamed out.

    :meth:`stream` pushes the LLM's words to the input-streaming socket as
    they come, flushes at each sentence end and labels the audio with its
    sentences from the server's alignment; closing the stream (an
    interruption) closes the socket, which stops the generation.
    :meth:`synthesize` speaks one text over the HTTP streaming endpoint
    (the socket with ``transport="websocket"``), which is also what a
    stream falls back to when the socket cannot be used (``transport="auto"``).
    """

    name: ClassVar[str] = "elevenlabs"
    sample_rate: ClassVar[int] = 24_000
    channels: ClassVar[int] = 1

    class Settings(ProviderSettings):
        """Settings, read from ``VOCALIS_TTS_ELEVENLABS_*``.

        Attributes:
            api_key: The API key: ``VOCALIS_TTS_ELEVENLABS_API_KEY``, else
                ``ELEVENLABS_API_KEY``, each from the environment or ``.env``
                (the environment wins).
            base_url: The API root (``https://...``; the socket uses the
                same host over ``wss://``).
            voice_id: The voice.
            model: The model (``eleven_flash_v2_5`` is the fastest).
            output_format: Raw PCM at this rate (``pcm_44100`` needs a Pro plan).
            transport: ``auto`` (the socket; HTTP when the socket cannot be
                used), ``websocket`` or ``http`` (sentence by sentence).
            stability: Voice stability, 0..1 (None: the voice's own).
            similarity_boost: Closeness to the original voice, 0..1.
            style: Style exaggeration, 0..1 (v2+ models).
            use_speaker_boost: Speaker boost (v2+ models).
            speed: 0.7..1.2 (None: 1.0).
            chunk_length_schedule: Characters the server buffers before each
                of its first generations (each 50..500; None: the server's
                ``[120, 160, 250, 290]``); sentence ends flush anyway.
            auto_mode: The server speaks each message at once, without its
                buffer; whole sentences are then sent, never fragments.
            sync_alignment: Ask for character timings on every audio chunk.
            inactivity_timeout: Seconds the server keeps an idle socket
                (1..180; None: the server's 20 s). Keep-alives are sent
                every half of it.
            language_code: ISO 639-1 code, for models that take one.
            apply_text_normalization: ``auto``, ``on`` or ``off``.
            enable_logging: False asks for zero retention (enterprise plans).
            seed: Best-effort deterministic sampling.
            timeout: Seconds to connect, and the longest pause in a
                streamed HTTP body.
            frame_ms: Length of the frames produced.
        """

        # populate_by_name: ``api_key=...`` in code as well as the env aliases.
        model_config = provider_settings_config("tts", "elevenlabs", populate_by_name=True)

        # An alias replaces the env prefix, so the provider's own name is spelled
        # out; it wins over the vendor's within one source (environment, .env).
        api_key: SecretStr | None = Field(
            None, validation_alias=AliasChoices(f"{provider_env_prefix('tts', 'elevenlabs')}API_KEY", KEY_ENV)
        )
        base_url: str = DEFAULT_BASE_URL
        voice_id: str = Field(DEFAULT_VOICE, min_length=1)
        model: str = Field("eleven_flash_v2_5", min_length=1)
        output_format: OutputFormat = "pcm_24000"
        transport: Literal["auto", "websocket", "http"] = "auto"
        stability: float | None = Field(None, ge=0.0, le=1.0)
        similarity_boost: float | None = Field(None, ge=0.0, le=1.0)
        style: float | None = Field(None, ge=0.0, le=1.0)
        use_speaker_boost: bool | None = None
        speed: float | None = Field(None, ge=0.7, le=1.2)
        chunk_length_schedule: list[int] | None = None
        auto_mode: bool = False
        sync_alignment: bool = True
        inactivity_timeout: int | None = Field(None, ge=1, le=180)
        language_code: str | None = None
        apply_text_normalization: Literal["auto", "on", "off"] | None = None
        enable_logging: bool | None = None
        seed: int | None = Field(None, ge=0, le=4_294_967_295)
        timeout: float = Field(10.0, gt=0)
        frame_ms: int = Field(20, ge=10, le=100)

        @field_validator("base_url")
        @classmethod
        def _url_with_scheme(cls, value: str) -> str:
            if not value.startswith(("http://", "https://", "ws://", "wss://")):
                raise ValueError(f"base_url needs a scheme, e.g. https://{value}")
            return value

        @field_validator("chunk_length_schedule")
        @classmethod
        def _schedule_in_range(cls, value: list[int] | None) -> list[int] | None:
            if value is not None and (not value or any(not 50 <= n <= 500 for n in value)):
                raise ValueError("chunk_length_schedule needs values from 50 to 500")
            return value

    settings: Settings

    def __init__(self, *, settings: ProviderSettings | None = None, **overrides: Any) -> None:
        # ``api_key=None`` (``os.getenv`` of an unset variable) gives no key:
        # the environment's or the ``.env`` file's is used.
        if "api_key" in overrides and overrides["api_key"] is None:
            del overrides["api_key"]
        super().__init__(settings=settings, **overrides)
        self.sample_rate = protocol.sample_rate_of(self.settings.output_format)  # type: ignore[misc]
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._websocket_refused_at: float | None = None

    # -- credentials and requests --------------------------------------------
    def api_key(self) -> str:
        """The key to send.

        Raises:
            ProviderError: None is set (not recoverable), naming the variables.
        """
        key = self.settings.api_key
        if key is None or not key.get_secret_value():
            raise missing_key_error(self)
        return key.get_secret_value()

    def voice_settings(self) -> dict[str, object] | None:
        """The ``voice_settings`` object, or None to keep the voice's own."""
        s = self.settings
        chosen: dict[str, object] = {
            "stability": s.stability,
            "similarity_boost": s.similarity_boost,
            "style": s.style,
            "use_speaker_boost": s.use_speaker_boost,
            "speed": s.speed,
        }
        given: dict[str, object] = {name: value for name, value in chosen.items() if value is not None}
        if not given:
            return None
        # The API requires both of these whenever voice_settings is sent.
        given.setdefault("stability", 0.5)
        given.setdefault("similarity_boost", 0.75)
        return given

    def init_message(self) -> str:
        """The socket's first message."""
        return protocol.init_message(self.voice_settings(), self.settings.chunk_length_schedule)

    def websocket_url(self) -> str:
        """The input-streaming URL with this provider's query parameters."""
        s = self.settings
        query = {
            "model_id": s.model,
            "output_format": s.output_format,
            "sync_alignment": _flag(s.sync_alignment),
        }
        if s.auto_mode:
            query["auto_mode"] = "true"
        if s.inactivity_timeout is not None:
            query["inactivity_timeout"] = str(s.inactivity_timeout)
        query.update(self._common_query())
        return protocol.websocket_url(s.base_url, s.voice_id, query)

    def _common_query(self) -> dict[str, str]:
        s = self.settings
        query: dict[str, str] = {}
        if s.language_code:
            query["language_code"] = s.language_code
        if s.apply_text_normalization:
            query["apply_text_normalization"] = s.apply_text_normalization
        if s.enable_logging is not None:
            query["enable_logging"] = _flag(s.enable_logging)
        if s.seed is not None:
            query["seed"] = str(s.seed)
        return query

    @property
    def keep_alive_seconds(self) -> float:
        """How long a socket may sit idle before a keep-alive is sent."""
        return (self.settings.inactivity_timeout or 20) / 2

    # -- transport choice ------------------------------------------------------
    def use_websocket(self) -> bool:
        """Whether a new stream should try the socket."""
        s = self.settings
        if s.transport != "auto":
            return s.transport == "websocket"
        refused = self._websocket_refused_at
        return refused is None or time.monotonic() - refused > _WEBSOCKET_RETRY_SECONDS

    def websocket_refused(self, error: ProviderError) -> None:
        """Remember that the socket cannot be used (``auto`` mode): HTTP for a while."""
        if self._websocket_refused_at is None:
            logger.warning("{}: the WebSocket cannot be used ({}); speaking over HTTP", self.label, error)
        self._websocket_refused_at = time.monotonic()

    # -- synthesis -------------------------------------------------------------
    def stream(self) -> ElevenLabsStream:
        """Open a streaming synthesis (see the class docstring)."""
        return ElevenLabsStream(self)

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        """Speak ``text``, yielding ``frame_ms`` frames as the audio streams in.

        Over HTTP (the API's advice when the whole text is known), or over
        the socket with ``transport="websocket"``. Text without letters or
        digits yields nothing and makes no request. Closing the generator
        early closes the response (or the socket).

        Raises:
            ProviderError: See :func:`~vocalis_elevenlabs.http.speak_http`.
        """
        if not isinstance(text, str):
            raise self.error(
                f"text must be a str, not {type(text).__name__}", recoverable=False, kind=ErrorKind.BAD_REQUEST
            )
        if not speakable(text):
            return
        if self.settings.transport == "websocket":
            stream = self.stream()
            try:
                stream.push_text(text.strip())
                stream.end_input()
                async for audio in stream:
                    yield audio.frame
            finally:
                await stream.aclose()
            return
        limit = _MAX_CHARS.get(self.settings.model, _DEFAULT_MAX_CHARS)
        for piece in split_text(text.strip(), limit):
            async with contextlib.aclosing(self.speak_http(piece)) as frames:
                async for frame in frames:
                    yield frame

    def speak_http(self, text: str) -> AsyncGenerator[AudioFrame, None]:
        """One HTTP request for ``text`` (already known to be speakable)."""
        s = self.settings
        body: dict[str, object] = {"text": text, "model_id": s.model}
        if (voice := self.voice_settings()) is not None:
            body["voice_settings"] = voice
        if s.language_code:
            body["language_code"] = s.language_code
        if s.apply_text_normalization:
            body["apply_text_normalization"] = s.apply_text_normalization
        if s.seed is not None:
            body["seed"] = s.seed
        query: dict[str, str] = {"output_format": s.output_format}
        if s.enable_logging is not None:
            query["enable_logging"] = _flag(s.enable_logging)
        url = protocol.http_url(s.base_url, s.voice_id, query)
        return speak_http(self, self._http_session(), url, body)

    # -- lifecycle -------------------------------------------------------------
    def _http_session(self) -> aiohttp.ClientSession:
        """The HTTP session of the running loop (its pooled connections belong to it)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            if self._session is not None and self._session_loop is not None and self._session_loop.is_closed():
                _forget(self._session)
            # trust_env: HTTP(S)_PROXY and NO_PROXY apply, as they do to the socket.
            self._session = aiohttp.ClientSession(trust_env=True)
            self._session_loop = loop
        return self._session

    async def prewarm(self) -> None:
        """Check the key and the voice (``GET /v1/voices/{voice_id}``), opening a connection.

        A key without the permission to read voices (403) passes: it may
        still speak.

        Raises:
            ProviderError: No key, a refused key, an unknown voice, or the
                server cannot be reached.
        """
        key = self.api_key()
        s = self.settings
        url = protocol.voice_url(s.base_url, s.voice_id)
        timeout = aiohttp.ClientTimeout(total=min(s.timeout, 5.0))
        try:
            async with self._http_session().get(url, headers={"xi-api-key": key}, timeout=timeout) as reply:
                if reply.status >= 400 and reply.status != 403:
                    raise http_error(self, reply.status, await error_body(reply))
        except ProviderError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # Mapped as a request's failure is, the host and reason included.
            raise network_error(self, exc, timeout.total or s.timeout) from exc

    async def aclose(self) -> None:
        """Close the HTTP session. Idempotent."""
        session, self._session = self._session, None
        loop, self._session_loop = self._session_loop, None
        if session is None or session.closed:
            return
        if loop is asyncio.get_running_loop():
            await session.close()
        elif loop is not None and loop.is_closed():
            _forget(session)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _forget(session: aiohttp.ClientSession) -> None:
    """Mark closed a session whose loop has finished (a script's ``asyncio.run`` per call).

    Its connections died with their loop; closing it on that closed loop
    completes without waiting, so the close coroutine is run here to its end
    instead of leaving an "unclosed session" report for the garbage collector.
    """
    closing = session.close()
    try:
        closing.send(None)
    except StopIteration:
        return
    except RuntimeError:
        pass
    closing.close()
