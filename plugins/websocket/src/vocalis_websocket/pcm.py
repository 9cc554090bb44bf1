"""Raw PCM over a WebSocket, for custom clients (``/ws``).

Binary messages carry 16-bit little-endian mono PCM at the rate the client
chose with ``?sample_rate=`` (8000..48000, 16000 by default), both ways.
Text messages are JSON objects with a ``type``: the server sends
``{"type": "ready", "session_id", "sample_rate"}`` first, then
``{"type": "session", "session_id", "resumed", "items"}`` when the server
supports resuming (``resumed``: whether the conversation of an earlier
connection was restored, ``items``: how many of its items), then every
session event as ``{"type": <event>, ...payload}``, ``{"type": "clear"}``
when the user barges in (drop the agent audio not played yet) and
``{"type": "close", "reason"}`` before it closes the socket. The client may
send ``{"type": "text", "text": "..."}`` (a typed user turn, at most
``max_text_chars`` characters) and ``{"type": "end"}`` (hang up).

A client that lost its connection reconnects with ``?session=<session_id>``
(1-128 characters of ``[A-Za-z0-9_.:-]``; anything else is refused with
close code 1008 "invalid session id") to resume its conversation.

Malformed messages give an ``error`` event (rate-limited, see
:class:`~vocalis_websocket.base.SocketTransport.bad_message`); they end
the session only when ``max_bad_messages`` of them come in a row (1008).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from loguru import logger

from vocalis.providers.transport import AudioSink
from vocalis.serve.server import AdmissionError
from vocalis.settings import provider_settings_config
from vocalis.text import clean_text, has_text
from vocalis_websocket.audio_out import ChunkedAudioOutput
from vocalis_websocket.base import (
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_AGAIN_LATER,
    SocketSettings,
    SocketTransport,
    connection_log,
    guarded,
    new_socket,
    refuse,
    valid_session_id,
)
from vocalis_websocket.outbox import dumps, jsonable

if TYPE_CHECKING:
    from aiohttp import web

    from vocalis.serve.http import Routes
    from vocalis.serve.server import SessionServer
    from vocalis.session.agent_session import AgentSession
    from vocalis_websocket.throttle import ThrottledLog

MIN_RATE = 8000
MAX_RATE = 48000
ERROR_SOURCE = "websocket"


class PCMAudioOutput(ChunkedAudioOutput):
    """Agent audio as binary PCM messages; ``{"type": "clear"}`` on barge-in."""

    def __init__(self, transport: PCMWebSocketTransport, sample_rate: int, chunk_seconds: float) -> None:
        super().__init__(sample_rate, chunk_seconds)
        self._transport = transport

    def send_chunk(self, pcm: bytes) -> None:
        self._transport.put(pcm, audio=True)

    def send_clear(self) -> None:
        t = self._transport
        if t.outbox is not None:
            t.outbox.drop_audio()
        t.put(dumps({"type": "clear"}))


class PCMWebSocketTransport(SocketTransport):
    """One raw-PCM WebSocket client.

    Settings (``VOCALIS_TRANSPORT_WEBSOCKET_*``): ``path`` of the endpoint,
    ``default_sample_rate`` (when the client names none), ``chunk_ms``
    (agent audio per binary message), ``heartbeat`` (seconds between
    WebSocket pings; None disables them), ``close_timeout``,
    ``max_queued_audio_bytes`` (agent audio queued for a client that reads
    slower than it is made; the oldest is dropped past it),
    ``max_text_chars`` (longest ``text`` message), ``open_timeout``,
    ``log_burst``, ``log_interval`` and ``max_bad_messages`` (see
    :class:`~vocalis_websocket.base.SocketTransport`).

    Args:
        ws: The accepted socket.
        sample_rate: The client's PCM rate, both directions.
    """

    name: ClassVar[str] = "websocket"

    class Settings(SocketSettings):
        model_config = provider_settings_config("transport", "websocket")
        path: str = "/ws"
        default_sample_rate: int = 16000
        max_text_chars: int = 4000

    def __init__(
        self, ws: web.WebSocketResponse | None = None, *, sample_rate: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(ws, **kwargs)
        settings: Any = self.settings
        self.sample_rate = sample_rate or settings.default_sample_rate
        self.audio_output: PCMAudioOutput = PCMAudioOutput(self, self.sample_rate, settings.chunk_ms / 1000)

    async def start(self, sink: AudioSink) -> None:
        await super().start(sink)
        session_id = getattr(sink, "id", None)
        self.put(dumps({"type": "ready", "session_id": session_id, "sample_rate": self.sample_rate}))

    @property
    def error_source(self) -> str:
        return ERROR_SOURCE

    def send_event(self, event: str, payload: Mapping[str, object]) -> None:
        # Every event the session forwards, and the server's own ("session" after a start).
        message = jsonable(payload)
        message["type"] = event  # the event name wins over a payload field of that name
        self.put(dumps(message))

    def goodbye(self, reason: str) -> None:
        self.put(dumps({"type": "close", "reason": reason}))

    # -- inbound messages -----------------------------------------------------
    async def on_binary(self, session: AgentSession, data: bytes) -> bool:
        if len(data) % 2:
            return self.bad_message(session, f"a binary message of {len(data)} bytes is not 16-bit PCM")
        self.good_message()
        if data:
            session.push_pcm(data, self.sample_rate)
        return True

    async def on_text(self, session: AgentSession, text: str) -> bool:
        try:
            message = json.loads(text)
        except ValueError:
            return self.bad_message(session, "a text message is not JSON")
        except RecursionError:  # "[[[[…": not an error of the reading loop, just a bad message
            return self.bad_message(session, "a text message is JSON nested too deeply")
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "text":
            typed = message.get("text")
            limit: int = getattr(self.settings, "max_text_chars", 4000)
            if isinstance(typed, str) and len(typed) > limit:
                return self.bad_message(session, f'a "text" message is longer than {limit} characters')
            if not isinstance(typed, str) or not has_text(clean_text(typed)):
                return self.bad_message(session, 'a "text" message needs a non-empty "text" string')
            self.good_message()
            await session.send_text(typed, wait_for_playback=False)
        elif kind == "end":
            logger.info("{}: the client ended the session", self.label)
            return False
        elif isinstance(kind, str):
            return self.bad_message(session, f"unknown message type {kind[:40]!r}")
        else:
            return self.bad_message(session, 'a text message must be a JSON object with a "type"')
        return True

    # -- serving ------------------------------------------------------------
    @classmethod
    def add_routes(cls, routes: Routes, server: SessionServer) -> None:
        """Serve raw PCM at ``path`` (the server's token is required)."""
        settings: Any = cls.Settings()
        log = connection_log(cls.name, settings)  # one per endpoint: refusals and failures, rate-limited

        async def handler(request: web.Request) -> web.StreamResponse:
            return await cls.handle(request, server, settings, log)

        routes.get(settings.path, handler)

    @classmethod
    async def handle(
        cls, request: web.Request, server: SessionServer, settings: Any, log: ThrottledLog | None = None
    ) -> web.StreamResponse:
        """One client: check the rate and session id, admit, accept, run the session."""
        from aiohttp import web

        rate = parse_rate(request.query.get("sample_rate"), settings.default_sample_rate)
        if rate is None:
            raise web.HTTPBadRequest(text=f"sample_rate must be an integer from {MIN_RATE} to {MAX_RATE}")
        ws = new_socket(server, settings)
        log = log or connection_log(cls.name, settings)
        return await guarded(ws, cls._accept(request, ws, server, settings, rate, log), log)

    @classmethod
    async def _accept(
        cls,
        request: web.Request,
        ws: web.WebSocketResponse,
        server: SessionServer,
        settings: Any,
        rate: int,
        log: ThrottledLog,
    ) -> None:
        resume_id = request.query.get("session")
        if resume_id is not None and not valid_session_id(resume_id):
            # Browsers cannot read a refused handshake's status: say it in a close frame.
            await ws.prepare(request)
            await refuse(ws, CLOSE_POLICY_VIOLATION, "invalid session id", log)
            return
        try:
            server.admit()
        except AdmissionError as exc:
            await ws.prepare(request)
            await refuse(ws, CLOSE_TRY_AGAIN_LATER, f"try again later: {exc}", log)
            return
        try:
            await ws.prepare(request)
            transport = cls(ws, sample_rate=rate, settings=settings)
        except BaseException:
            server.release()
            raise
        await cls.run_session(server, transport, resume_id=resume_id)


def parse_rate(value: str | None, default: int) -> int | None:
    """The requested sample rate, or None when it is not an integer in range."""
    if value is None or value == "":
        return default
    try:
        rate = int(value)
    except ValueError:
        return None
    return rate if MIN_RATE <= rate <= MAX_RATE else None
