"""What the Twilio and raw-PCM transports share: one socket, one session.

Per connection a handler accepts the WebSocket, reserves a place with
``server.admit()``, builds the transport and opens a session on it, then
reads the socket until the remote side leaves (the session is closed with
reason ``"hangup"``). When the server closes the session first (idle,
shutdown), the transport's :meth:`SocketTransport.aclose` closes the socket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.providers.transport import AudioSink, Transport
from vocalis.settings import ProviderSettings
from vocalis_websocket.outbox import DEFAULT_MAX_AUDIO_BYTES, Outbox

if TYPE_CHECKING:
    from aiohttp import web

    from vocalis.serve.server import SessionServer
    from vocalis.session.agent_session import AgentSession

# RFC 6455 close codes used here (aiohttp's WSCloseCode has the same values).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013


def close_code_for(reason: str) -> int:
    """The close code that tells the remote side why its session ended."""
    return CLOSE_GOING_AWAY if reason == "shutdown" else CLOSE_NORMAL


def new_socket(server: SessionServer, settings: Any) -> web.WebSocketResponse:
    """A server-side WebSocket with the serving limits applied."""
    from aiohttp import web

    return web.WebSocketResponse(
        max_msg_size=server.options.max_message_bytes,
        heartbeat=settings.heartbeat,
        timeout=settings.close_timeout,
        # Audio does not compress well; deflate would only cost CPU per message.
        compress=False,
    )


async def refuse(ws: web.WebSocketResponse, code: int, reason: str) -> None:
    """Close a socket before any session started, saying why."""
    level = "WARNING" if code == CLOSE_POLICY_VIOLATION else "INFO"
    logger.log(level, "websocket refused ({}): {}", code, reason)
    # A close frame's reason is at most 123 bytes.
    await ws.close(code=code, message=reason.encode()[:123])


class SocketSettings(ProviderSettings):
    """Settings both WebSocket transports have (each adds its env prefix and path)."""

    chunk_ms: int = 20
    heartbeat: float | None = 30.0
    close_timeout: float = 2.0
    max_queued_audio_bytes: int = DEFAULT_MAX_AUDIO_BYTES


class SocketTransport(Transport):
    """A transport on one accepted server-side WebSocket.

    Built without a socket (e.g. by the registry) it can be inspected but
    not started. Subclasses read the socket in :meth:`on_text` and
    :meth:`on_binary`; both return False when the remote side hangs up.

    Args:
        ws: The prepared WebSocket.
        **kwargs: Settings overrides.
    """

    def __init__(self, ws: web.WebSocketResponse | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ws = ws
        # Settings may lack the field (a subclass's own Settings): the default cap still applies.
        cap = getattr(self.settings, "max_queued_audio_bytes", DEFAULT_MAX_AUDIO_BYTES)
        self.outbox = Outbox(ws, self.label, max_audio_bytes=cap) if ws is not None else None
        self.sink: AudioSink | None = None
        self.closed = False

    # -- lifecycle ----------------------------------------------------------
    async def start(self, sink: AudioSink) -> None:
        if self.outbox is None:
            raise self.error(
                "this transport serves WebSocket connections accepted by `vocalis serve`; it was built without one",
                recoverable=False,
            )
        self.sink = sink
        self.outbox.start()

    def put(self, message: str | bytes, *, audio: bool = False) -> None:
        """Queue a message for the remote side (dropped once closed)."""
        if self.outbox is not None and not self.closed:
            self.outbox.put(message, audio=audio)

    def goodbye(self, reason: str) -> None:
        """Queue a last message before the socket closes (nothing by default)."""

    async def aclose(self) -> None:
        """Send what is queued (briefly), then close the socket. Idempotent."""
        if self.closed:
            return
        reason = getattr(self.sink, "close_reason", "") or "closed"
        settings: Any = self.settings
        if self.outbox is not None:
            self.goodbye(reason)
            self.closed = True
            await self.outbox.drain(settings.close_timeout)
            await self.outbox.aclose()
        self.closed = True
        ws = self.ws
        if ws is not None and ws.prepared and not ws.closed:
            await ws.close(code=close_code_for(reason), message=reason.encode()[:123])

    # -- reading --------------------------------------------------------------
    async def on_text(self, session: AgentSession, text: str) -> bool:
        """Handle a text message; False ends the call."""
        return True

    async def on_binary(self, session: AgentSession, data: bytes) -> bool:
        """Handle a binary message; False ends the call."""
        return True

    async def serve(self, session: AgentSession) -> None:
        """Read the socket until the remote side leaves or the session closes it."""
        from aiohttp import WSMsgType

        ws = self.ws
        assert ws is not None
        while True:
            msg = await ws.receive()
            if msg.type is WSMsgType.TEXT:
                if not await self.on_text(session, msg.data):
                    return
            elif msg.type is WSMsgType.BINARY:
                if not await self.on_binary(session, msg.data):
                    return
            else:
                if msg.type is WSMsgType.ERROR:
                    # Too large a message, a broken frame: aiohttp closed the socket already.
                    logger.warning("{}: connection failed: {}", self.label, msg.data)
                return

    @classmethod
    async def run_session(cls, server: SessionServer, transport: SocketTransport) -> None:
        """Open a session on ``transport`` (after ``server.admit()``) and serve it to the end."""
        ws = transport.ws
        assert ws is not None
        try:
            session = await server.open_session(transport, reserved=True)
        except Exception as exc:
            logger.opt(exception=exc).error("{}: the session could not start", transport.label)
            if not ws.closed:
                await refuse(ws, CLOSE_INTERNAL_ERROR, "the session could not start")
            await transport.aclose()
            return
        try:
            await transport.serve(session)
        except Exception as exc:
            logger.opt(exception=exc).error("{}: reading the socket failed", transport.label)
        finally:
            await session.close(reason="hangup")
