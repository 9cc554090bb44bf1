"""The ``cartesia`` TTS provider: Sonic over the WebSocket API, and over HTTP.

:meth:`CartesiaTTS.stream` speaks a turn as one WebSocket context (see
:mod:`vocalis_cartesia.stream`); one WebSocket serves every turn.
:meth:`CartesiaTTS.synthesize` is the one-shot path: ``POST /tts/bytes``,
its raw PCM read as it streams in.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, ClassVar

import aiohttp
from loguru import logger
from pydantic import AliasChoices, Field, SecretStr, field_validator

from vocalis.audio import AudioFrame
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.redact import provider_secrets, redact
from vocalis.providers.tts import TTS
from vocalis.settings import ProviderSettings, provider_env_prefix, provider_settings_config
from vocalis.text import speakable
from vocalis_cartesia.connection import CartesiaConnection, on_loop_shutdown
from vocalis_cartesia.errors import body_detail, status_error, transport_error
from vocalis_cartesia.request import (
    API_ROOT,
    BYTES_PATH,
    SAMPLE_RATES,
    WEBSOCKET_PATH,
    ContextMessages,
    Voice,
    auth_headers,
    endpoint,
)
from vocalis_cartesia.stream import CartesiaTTSStream

DEFAULT_MODEL = "sonic-3"
DEFAULT_VOICE = "f786b574-daa5-4673-aa0c-cbe3e8534c02"
"""A stock English voice Cartesia suggests for agents."""
DEFAULT_VERSION = "2025-04-16"
"""The API version the protocol was written against."""
KEY_ENV = "CARTESIA_API_KEY"
"""Read when ``VOCALIS_TTS_CARTESIA_API_KEY`` is not set (the SDK's variable)."""
_OWN_KEY_ENV = f"{provider_env_prefix('tts', 'cartesia')}API_KEY"

# Formats a server may send when it ignored ``container: raw``; played as
# PCM they would be loud noise.
_COMPRESSED = ("audio/mpeg", "audio/mp3", "audio/wav", "audio/x-wav", "audio/wave", "audio/ogg", "audio/flac")
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class CartesiaTTS(TTS):
    """Speaks with Cartesia's Sonic models.

    A turn's text goes to one WebSocket context as it is produced, a
    sentence at a time (continuations keep the prosody across sentences);
    an interruption cancels the context server-side. Word timestamps, when
    asked for, ride on the audio of the sentence they time
    (:attr:`~vocalis.providers.tts.SynthesizedAudio.words`), so an
    interrupted sentence keeps exactly the words that played; the stream
    also lists them on its own timeline (:attr:`CartesiaTTSStream.word_timestamps`).
    """

    name: ClassVar[str] = "cartesia"
    sample_rate: ClassVar[int] = 24_000
    channels: ClassVar[int] = 1

    class Settings(ProviderSettings):
        """Settings, read from ``VOCALIS_TTS_CARTESIA_*``.

        Attributes:
            api_key: The API key: ``VOCALIS_TTS_CARTESIA_API_KEY``, else
                ``CARTESIA_API_KEY``, each from the environment or ``.env``
                (within one source the first name wins; the environment
                wins over ``.env``, as for every setting).
            base_url: The API root (``https://`` or ``wss://``; the other
                scheme is derived), e.g. a gateway's or a test server's.
            model_id: The model: ``sonic-3``, ``sonic-2``, ``sonic-turbo``...
            voice_id: The voice's id (from Cartesia's voice library).
            language: Language code of the text (``en``, ``fr``...); None
                leaves it to the model.
            sample_rate: Output rate: 8000, 16000, 22050, 24000, 44100 or 48000.
            cartesia_version: The API version (``Cartesia-Version``).
            add_timestamps: Ask for word timestamps on the WebSocket.
            normalized_timestamps: Time the normalised transcript's words
                (``use_normalized_timestamps``) instead of the words as sent.
            max_buffer_delay_ms: How long the server may hold text before it
                speaks (0 to 5000); None sends none. Each sentence is
                followed by a flush, which speaks what is held at once.
            generation_config: Sonic-3 controls sent as they are, e.g.
                ``{"speed": 1.1, "volume": 1.0, "emotion": "calm"}``.
            api_key_in_query: Also send the key as the WebSocket's
                ``api_key`` query parameter, as the reference of the pinned
                API version has it (the headers are the current way; the
                URL is never logged unredacted). False sends headers only.
            frame_ms: Length of the frames produced.
            timeout: Seconds to connect, and the longest silence of a reply
                once it started, before the request fails.
        """

        # Fields settable by name (``api_key=...``) too, not only by their env alias.
        model_config = provider_settings_config("tts", "cartesia", populate_by_name=True)

        # An alias replaces the env prefix: the provider's own name is spelled out.
        api_key: SecretStr | None = Field(None, validation_alias=AliasChoices(_OWN_KEY_ENV, KEY_ENV))
        base_url: str = API_ROOT
        model_id: str = DEFAULT_MODEL
        voice_id: str = DEFAULT_VOICE
        language: str | None = "en"
        sample_rate: int = 24_000
        cartesia_version: str = DEFAULT_VERSION
        add_timestamps: bool = True
        normalized_timestamps: bool = False
        max_buffer_delay_ms: int | None = Field(None, ge=0, le=5000)
        generation_config: dict[str, str | float] | None = None
        api_key_in_query: bool = True
        frame_ms: int = Field(20, ge=10, le=100)
        timeout: float = Field(10.0, gt=0)

        @field_validator("base_url")
        @classmethod
        def _url_with_scheme(cls, value: str) -> str:
            if not value.startswith(("http://", "https://", "ws://", "wss://")):
                raise ValueError(f"base_url needs a scheme, e.g. https://{value}")
            return value

        @field_validator("sample_rate")
        @classmethod
        def _offered_rate(cls, value: int) -> int:
            if value not in SAMPLE_RATES:
                raise ValueError(f"sample_rate must be one of {', '.join(map(str, SAMPLE_RATES))}")
            return value

        @field_validator("cartesia_version")
        @classmethod
        def _dated(cls, value: str) -> str:
            if not _VERSION.match(value):
                raise ValueError("cartesia_version is a date, YYYY-MM-DD")
            return value

    settings: Settings

    def __init__(self, *, settings: ProviderSettings | None = None, **overrides: Any) -> None:
        # ``api_key=None`` (``api_key=os.getenv(...)`` of an unset variable)
        # gives no key: the one of the environment or ``.env`` is used.
        if "api_key" in overrides and overrides["api_key"] is None:
            del overrides["api_key"]
        super().__init__(settings=settings, **overrides)
        self.sample_rate = self.settings.sample_rate  # type: ignore[misc]  # the rate the settings ask for
        self._connection: CartesiaConnection | None = None
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._session_guard: AsyncGenerator[None, None] | None = None

    @property
    def model_name(self) -> str | None:
        """The Sonic model spoken with."""
        return self.settings.model_id

    # -- credentials and errors ----------------------------------------------
    def secret_values(self) -> list[str]:
        """The credentials this provider sends (its key, from the environment, ``.env`` or code)."""
        return provider_secrets([self])

    def error(self, message: str, *, recoverable: bool = True, kind: ErrorKind = ErrorKind.UNKNOWN) -> ProviderError:
        """Build a :class:`ProviderError` whose message has no credential in it.

        Messages quote the server, and a server (or a gateway) may echo the key.
        """
        return super().error(redact(message, self.secret_values()), recoverable=recoverable, kind=kind)

    def api_key(self) -> str:
        """The key to send.

        Raises:
            ProviderError: No key is set (``AUTH``, not recoverable).
        """
        if self.settings.api_key is not None and self.settings.api_key.get_secret_value():
            return self.settings.api_key.get_secret_value()
        prefix = self.settings.model_config.get("env_prefix", "")
        raise self.error(f"no API key: set {prefix}API_KEY (or {KEY_ENV})", recoverable=False, kind=ErrorKind.AUTH)

    # -- the WebSocket path ------------------------------------------------------
    def connection(self) -> CartesiaConnection:
        """The WebSocket connection of the running event loop (made on first use)."""
        loop = asyncio.get_running_loop()
        if self._connection is not None and self._connection.loop is not loop:
            self._connection.abandon()  # its loop is gone: its socket cannot be closed through it
            self._connection = None
        if self._connection is None:
            self._connection = CartesiaConnection(
                self, self._websocket_target, self.secret_values, self.settings.timeout
            )
        return self._connection

    def _websocket_target(self) -> tuple[str, dict[str, str]]:
        s = self.settings
        key = self.api_key()
        query = {"cartesia_version": s.cartesia_version}
        if s.api_key_in_query:
            query["api_key"] = key
        return endpoint(s.base_url, WEBSOCKET_PATH, websocket=True, query=query), auth_headers(key, s.cartesia_version)

    def voice(self) -> Voice:
        """The generation fields every request repeats."""
        s = self.settings
        return Voice(s.model_id, s.voice_id, s.sample_rate, s.language, s.generation_config)

    def context_messages(self, context_id: str) -> ContextMessages:
        """The messages of a new WebSocket context."""
        s = self.settings
        return ContextMessages(
            self.voice(), context_id, s.add_timestamps, s.max_buffer_delay_ms, s.normalized_timestamps
        )

    def stream(self) -> CartesiaTTSStream:
        """Open a turn: one WebSocket context, fed a sentence at a time."""
        return CartesiaTTSStream(self)

    async def prewarm(self) -> None:
        """Open the WebSocket (and check the key) ahead of the first turn.

        Raises:
            ProviderError: No key, or the handshake failed.
        """
        await self.connection().open()

    # -- the HTTP path -------------------------------------------------------------
    async def _http(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            # A session of another loop was closed when that loop shut down
            # (or cannot be closed from this one): it is dropped.
            t = self.settings.timeout
            timeout = aiohttp.ClientTimeout(total=None, connect=t, sock_connect=t, sock_read=t)
            session = aiohttp.ClientSession(timeout=timeout)
            self._session, self._session_loop = session, loop
            self._session_guard = await on_loop_shutdown(session.close)
        return self._session

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        """Speak ``text`` over ``POST /tts/bytes``, yielding frames as the audio streams in.

        Text without letters or digits yields nothing and makes no request.
        Closing the generator early closes the HTTP response.

        Raises:
            ProviderError: No key (``AUTH``); the request was refused (kind by
                status; recoverable for 408, 429 and 5xx); no answer in time
                (``TIMEOUT``) or a stall mid-reply (``STALLED``); a failed or
                dropped connection (``CONNECTION``).
        """
        if not isinstance(text, str):
            raise self.error(
                f"text must be a str, not {type(text).__name__}", recoverable=False, kind=ErrorKind.BAD_REQUEST
            )
        if not speakable(text):
            return
        s = self.settings
        headers = auth_headers(self.api_key(), s.cartesia_version)
        url = endpoint(s.base_url, BYTES_PATH, websocket=False)
        frame_bytes = 2 * (self.sample_rate * s.frame_ms // 1000)
        pending = bytearray()
        started = False
        logger.debug("{}: speaking {} characters over HTTP", self.label, len(text))
        try:
            session = await self._http()
            async with session.post(url, json=self.voice().body(text.strip()), headers=headers) as response:
                if response.status >= 400:
                    detail = body_detail(await response.content.read(4096), self.secret_values())
                    raise status_error(self, response.status, detail, what="request refused")
                self._check_content_type(response.headers.get("Content-Type", ""))
                started = True
                async for chunk in response.content.iter_any():
                    pending += chunk
                    # Whole frames only: chunks split samples at odd byte counts.
                    while len(pending) >= frame_bytes:
                        yield AudioFrame(bytes(pending[:frame_bytes]), self.sample_rate)
                        del pending[:frame_bytes]
        except Exception as exc:
            raise transport_error(self, exc, self.secret_values(), started=started, timeout=s.timeout) from exc
        if len(pending) % 2:
            del pending[-1:]
        if pending:
            yield AudioFrame(bytes(pending), self.sample_rate)

    def _check_content_type(self, content_type: str) -> None:
        kind = content_type.split(";", 1)[0].strip().lower()
        if kind in _COMPRESSED or kind.startswith("application/json"):
            raise self.error(f"server sent {kind} instead of raw PCM", recoverable=False, kind=ErrorKind.PROTOCOL)

    async def aclose(self) -> None:
        """Close the WebSocket (cancelling open contexts) and the HTTP session. Idempotent."""
        loop = asyncio.get_running_loop()
        connection, self._connection = self._connection, None
        if connection is not None:
            if connection.loop is loop:
                await connection.aclose()
            else:
                connection.abandon()
        self._session = None
        guard, self._session_guard = self._session_guard, None
        session_loop, self._session_loop = self._session_loop, None
        if guard is not None and session_loop is loop:
            await guard.aclose()  # closes the session
