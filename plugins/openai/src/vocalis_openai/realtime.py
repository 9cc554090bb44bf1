"""The ``openai`` realtime provider: speech to speech over the Realtime WebSocket API.

One :class:`OpenAIRealtime` opens one WebSocket per :meth:`~OpenAIRealtime.connect`
with the official SDK (``client.realtime.connect``, GA protocol), configures
the session (instructions, voice, 24 kHz PCM both ways, turn detection,
input transcription, tools) and replays the conversation so far. The
session itself lives in :mod:`vocalis_openai.realtime_session`.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from loguru import logger
from pydantic import Field

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.llm import ToolSpec
from vocalis.providers.realtime import RealtimeModel
from vocalis.providers.redact import RedactingLogger, redact
from vocalis.settings import provider_settings_config
from vocalis_openai.client import (
    OpenAIClientMixin,
    OpenAISettings,
    provider_error,
    status_kind,
    warm_sdk,
)
from vocalis_openai.realtime_items import history_items, tool_definition
from vocalis_openai.realtime_session import OpenAIRealtimeSession

if TYPE_CHECKING:
    from vocalis.chat import ChatContext

# HTTP answers to the upgrade request that a retry (or a fallback) may get past.
_RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
# How long closing the socket may wait for the server's close frame.
_CLOSE_TIMEOUT = 2.0


class OpenAIRealtime(OpenAIClientMixin, RealtimeModel):
    """OpenAI's speech-to-speech models (``gpt-realtime`` and compatibles).

    Audio goes both ways as 16-bit PCM at 24 kHz. By default the server
    detects the user's turns (``server_vad``) and answers on its own; the
    pipeline relays barge-ins as ``response.cancel`` plus a truncation of the
    assistant's audio to what the user heard.
    """

    name: ClassVar[str] = "openai"
    sdk_modules: ClassVar[tuple[str, ...]] = ("openai.resources.realtime.realtime",)
    sample_rate: ClassVar[int] = 24_000

    class Settings(OpenAISettings):
        """Settings, read from ``VOCALIS_REALTIME_OPENAI_*``.

        Attributes:
            model: The realtime model, sent as the ``model`` query parameter.
            voice: Built-in voice (``marin``, ``cedar``, ``alloy``, ...); it
                cannot change once the model has spoken.
            speed: Speaking rate, 0.25 to 1.5 (server default 1.0).
            turn_detection: ``server_vad`` (silence ends the turn),
                ``semantic_vad`` (a model judges whether the user is done) or
                ``none`` (the client commits the audio and asks for answers).
            vad_threshold: ``server_vad`` activation threshold, 0 to 1.
            silence_duration_ms: ``server_vad`` silence that ends a turn.
            prefix_padding_ms: ``server_vad`` audio kept before speech starts.
            eagerness: ``semantic_vad`` eagerness (low/medium/high/auto).
            interrupt_response: Whether the server cancels its answer by
                itself when the user starts speaking.
            input_transcription_model: Model transcribing the user's audio for
                the chat history (e.g. ``gpt-4o-mini-transcribe``); None or
                empty disables user transcripts.
            input_language: ISO-639-1 hint for the input transcription.
            noise_reduction: ``near_field`` or ``far_field`` input filtering.
            max_output_tokens: Most tokens one answer may take (1 to 4096).
            tool_choice: ``auto``, ``none`` or ``required`` when tools exist.
            websocket_base_url: WebSocket root overriding the one derived from
                ``base_url`` (``http`` becomes ``ws``, ``https`` ``wss``).
        """

        model_config = provider_settings_config("realtime", "openai")

        model: str = "gpt-realtime"
        voice: str = "marin"
        speed: float | None = Field(None, ge=0.25, le=1.5)
        turn_detection: Literal["server_vad", "semantic_vad", "none"] = "server_vad"
        vad_threshold: float | None = Field(None, ge=0.0, le=1.0)
        silence_duration_ms: int | None = Field(None, ge=0)
        prefix_padding_ms: int | None = Field(None, ge=0)
        eagerness: Literal["low", "medium", "high", "auto"] | None = None
        interrupt_response: bool = True
        input_transcription_model: str | None = "gpt-4o-mini-transcribe"
        input_language: str | None = None
        noise_reduction: Literal["near_field", "far_field"] | None = None
        max_output_tokens: int | None = Field(None, ge=1, le=4096)
        tool_choice: Literal["auto", "none", "required"] = "auto"
        websocket_base_url: str | None = None

    settings: Settings

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sessions: weakref.WeakSet[OpenAIRealtimeSession] = weakref.WeakSet()

    def _client_options(self) -> dict[str, Any]:
        if self.settings.websocket_base_url:
            return {"websocket_base_url": self.settings.websocket_base_url}
        return {}

    async def prewarm(self) -> None:
        """Do the SDK's first-use work off the loop; each session opens its own WebSocket."""
        await asyncio.to_thread(warm_sdk, self.sdk_modules)

    async def connect(
        self,
        *,
        instructions: str,
        tools: Sequence[ToolSpec] = (),
        chat_ctx: ChatContext | None = None,
    ) -> OpenAIRealtimeSession:
        """Open a session: handshake, configure it, wait for ``session.created``.

        Raises:
            ProviderError: The server refused or could not be reached, or it
                reported an error before the session was created.
        """
        # The realtime pipeline connects without a prewarm: the SDK's first-use
        # imports must not run on the loop (one thread hop per session).
        await asyncio.to_thread(warm_sdk, self.sdk_modules)
        settings = self.settings
        config = self.session_config(instructions, tools)
        history = history_items(chat_ctx, instructions)
        # The SDK hands these on to websockets' connect(); its TypedDict omits them.
        options: Any = {
            "open_timeout": settings.timeout,
            "close_timeout": _CLOSE_TIMEOUT,
            "logger": RedactingLogger("websockets.client", self.secret_values()),
        }
        manager = self.client.realtime.connect(model=settings.model, websocket_connection_options=options)
        try:
            connection = await manager.enter()
        except Exception as exc:
            raise self._connect_error(exc) from exc
        session = OpenAIRealtimeSession(self, connection, manual_turns=settings.turn_detection == "none")
        self._sessions.add(session)
        session.send_client_event({"type": "session.update", "session": config})
        for item in history:
            session.send_client_event({"type": "conversation.item.create", "item": item})
        try:
            await asyncio.wait_for(session.wait_ready(), timeout=settings.timeout)
        except BaseException as exc:
            await session.aclose()
            if isinstance(exc, TimeoutError):
                raise self.error(f"no session.created within {settings.timeout:g} s", kind=ErrorKind.TIMEOUT) from exc
            raise
        logger.debug("{} connected: model {}", self.label, settings.model)
        return session

    def session_config(self, instructions: str, tools: Sequence[ToolSpec] = ()) -> dict[str, Any]:
        """The ``session`` object of the first ``session.update``."""
        s = self.settings
        pcm = {"type": "audio/pcm", "rate": self.sample_rate}
        audio_in: dict[str, Any] = {"format": pcm, "turn_detection": self._turn_detection()}
        if s.input_transcription_model:
            transcription: dict[str, Any] = {"model": s.input_transcription_model}
            if s.input_language:
                transcription["language"] = s.input_language
            audio_in["transcription"] = transcription
        if s.noise_reduction:
            audio_in["noise_reduction"] = {"type": s.noise_reduction}
        audio_out: dict[str, Any] = {"format": pcm, "voice": s.voice}
        if s.speed is not None:
            audio_out["speed"] = s.speed
        config: dict[str, Any] = {
            "type": "realtime",
            "instructions": instructions,
            "output_modalities": ["audio"],
            "audio": {"input": audio_in, "output": audio_out},
        }
        if tools:
            config["tools"] = [tool_definition(tool) for tool in tools]
            config["tool_choice"] = s.tool_choice
        if s.max_output_tokens is not None:
            config["max_output_tokens"] = s.max_output_tokens
        return config

    def _turn_detection(self) -> dict[str, Any] | None:
        s = self.settings
        if s.turn_detection == "none":
            return None
        detection: dict[str, Any] = {
            "type": s.turn_detection,
            "create_response": True,
            "interrupt_response": s.interrupt_response,
        }
        if s.turn_detection == "server_vad":
            optional = {
                "threshold": s.vad_threshold,
                "silence_duration_ms": s.silence_duration_ms,
                "prefix_padding_ms": s.prefix_padding_ms,
            }
            detection.update({k: v for k, v in optional.items() if v is not None})
        elif s.eagerness is not None:
            detection["eagerness"] = s.eagerness
        return detection

    def _connect_error(self, exc: BaseException) -> ProviderError:
        """A labelled error for a failed handshake, sorted by exception class."""
        from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

        if isinstance(exc, InvalidStatus):
            status = exc.response.status_code
            detail = _body_detail(exc.response.body, self.secret_values()) or exc.response.reason_phrase
            recoverable = status in _RETRYABLE_STATUS or status >= 500
            return self.error(
                f"handshake refused: HTTP {status}: {detail}",
                recoverable=recoverable,
                kind=status_kind(status),
            )
        if isinstance(exc, InvalidURI):
            return self.error(f"bad WebSocket URL: {exc}", recoverable=False, kind=ErrorKind.BAD_REQUEST)
        if isinstance(exc, TimeoutError):
            return self.error(f"handshake timed out after {self.settings.timeout:g} s", kind=ErrorKind.TIMEOUT)
        if isinstance(exc, OSError) or _caused_by_os_error(exc):
            return self.error(f"connection failed: {type(exc).__name__}: {exc}", kind=ErrorKind.CONNECTION)
        if isinstance(exc, InvalidHandshake):
            # The server answered, but not with a WebSocket upgrade.
            return self.error(f"handshake failed: {type(exc).__name__}: {exc}", kind=ErrorKind.PROTOCOL)
        return provider_error(self, exc, started=False)

    async def aclose(self) -> None:
        """Close open sessions and the HTTP client. Idempotent."""
        sessions = list(self._sessions)
        self._sessions.clear()
        for session in sessions:
            await session.aclose()
        await super().aclose()


def _caused_by_os_error(exc: BaseException) -> bool:
    """Whether a connection failure (``OSError``, ``EOFError``) is behind ``exc``."""
    seen: set[int] = set()
    cause: BaseException | None = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, OSError | EOFError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _body_detail(body: bytes | bytearray | None, secrets: list[str]) -> str:
    """The error message in a refused handshake's body, if it has one, redacted."""
    if not body:
        return ""
    text = bytes(body).decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict) and error.get("message"):
        return redact(str(error["message"]), secrets)
    # Redacted before it is cut short: half a key would no longer be found.
    return redact(text, secrets, limit=200)
