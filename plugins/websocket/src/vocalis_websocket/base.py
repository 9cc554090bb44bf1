"""What the Twilio and raw-PCM transports share: one socket, one session.

Per connection a handler accepts the WebSocket, reserves a place with
``server.admit()``, builds the transport and opens a session on it (within
``open_timeout`` seconds), then reads the socket until the remote side
leaves (the session is closed with reason ``"hangup"``). When the server
closes the session first (idle, shutdown), the transport's
:meth:`SocketTransport.aclose` closes the socket.

A peer can misbehave at will, so what it triggers is rate-limited (see
:mod:`vocalis_websocket.throttle`): bad messages are logged and reported
as ``error`` events at most ``log_burst`` times per ``log_interval``
seconds, ``max_bad_messages`` of them in a row close the socket (1008),
and connection-level failures (a reset peer, the process out of file
descriptors) become one warning line each, rate-limited per endpoint,
instead of a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.providers.transport import AudioSink, Transport
from vocalis.serve.server import AdmissionError
from vocalis.settings import ProviderSettings
from vocalis_websocket.outbox import DEFAULT_MAX_AUDIO_BYTES, Outbox
from vocalis_websocket.throttle import ThrottledLog

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

_SESSION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def valid_session_id(value: object) -> bool:
    """Whether ``value`` may name a session to resume: 1-128 of ``[A-Za-z0-9_.:-]``."""
    return isinstance(value, str) and _SESSION_ID.fullmatch(value) is not None


def close_code_for(reason: str) -> int:
    """The close code that tells the remote side why its session ended."""
    return CLOSE_GOING_AWAY if reason == "shutdown" else CLOSE_NORMAL


def describe(exc: BaseException) -> str:
    """``"OSError: [Errno 24] Too many open files"``: one line, no traceback."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def new_socket(server: SessionServer, settings: Any) -> web.WebSocketResponse:
    """A server-side WebSocket with the serving limits applied."""
    from aiohttp import web

    return web.WebSocketResponse(
        max_msg_size=server.options.max_message_bytes,
        # Pings every `heartbeat` seconds; a peer that stops answering is closed.
        heartbeat=settings.heartbeat,
        timeout=settings.close_timeout,
        # Audio does not compress well; deflate would only cost CPU per message.
        compress=False,
    )


def connection_log(name: str, settings: Any) -> ThrottledLog:
    """The rate-limited log of an endpoint's refused and failed connections."""
    return ThrottledLog(name, "refused or failed connections", settings.log_burst, settings.log_interval)


async def refuse(ws: web.WebSocketResponse, code: int, reason: str, log: ThrottledLog | None = None) -> None:
    """Close a socket before any session started, saying why (``log``: the endpoint's)."""
    level = "WARNING" if code == CLOSE_POLICY_VIOLATION else "INFO"
    text = f"refused ({code}): {reason}"
    if log is not None:
        log.log(text, level)
    else:
        logger.log(level, "websocket {}", text)
    # A close frame's reason is at most 123 bytes.
    await ws.close(code=code, message=reason.encode()[:123])


async def guarded(ws: web.WebSocketResponse, work: Awaitable[None], log: ThrottledLog) -> web.StreamResponse:
    """Serve one connection; a connection-level failure is one rate-limited line.

    ``OSError`` covers a peer that reset (``ConnectionResetError``, aiohttp's
    ``ClientConnectionResetError`` on send) and the process running out of
    file descriptors (``EMFILE``); without this aiohttp logs a full
    traceback per connection. Cancellation still propagates.
    """
    from aiohttp import web

    try:
        await work
    except OSError as exc:
        log.log(f"connection failed: {describe(exc)}")
        if ws.prepared and not ws.closed:
            with contextlib.suppress(Exception):  # the connection is broken: closing is best effort
                await ws.close(code=CLOSE_INTERNAL_ERROR, message=b"connection failed")
    if ws.prepared:
        return ws
    return web.Response(status=503, text="the connection failed; try again later")


class SocketSettings(ProviderSettings):
    """Settings both WebSocket transports have (each adds its env prefix and path)."""

    chunk_ms: int = 20
    heartbeat: float | None = 30.0
    close_timeout: float = 2.0
    max_queued_audio_bytes: int = DEFAULT_MAX_AUDIO_BYTES
    open_timeout: float = 60.0
    log_burst: int = 5
    log_interval: float = 10.0
    max_bad_messages: int = 100


class SocketTransport(Transport):
    """A transport on one accepted server-side WebSocket.

    Built without a socket (e.g. by the registry) it can be inspected but
    not started. Subclasses read the socket in :meth:`on_text` and
    :meth:`on_binary`; both return False when the remote side hangs up
    (or :meth:`bad_message` says the connection must close).

    Args:
        ws: The prepared WebSocket.
        **kwargs: Settings overrides.

    Attributes:
        bad_in_a_row: Bad messages since the last valid one.
        close_with: Close code and reason to use instead of the session's
            close reason (set when the transport ends the connection itself).
    """

    def __init__(self, ws: web.WebSocketResponse | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ws = ws
        settings: Any = self.settings
        # Settings may lack the fields (a subclass's own Settings): the defaults still apply.
        cap = getattr(settings, "max_queued_audio_bytes", DEFAULT_MAX_AUDIO_BYTES)
        self.outbox = Outbox(ws, self.label, max_audio_bytes=cap) if ws is not None else None
        self.sink: AudioSink | None = None
        self.closed = False
        self.bad_log = ThrottledLog(
            self.label, "bad messages", getattr(settings, "log_burst", 5), getattr(settings, "log_interval", 10.0)
        )
        self.max_bad_messages: int = getattr(settings, "max_bad_messages", 100)
        self.bad_in_a_row = 0
        self.close_with: tuple[int, str] | None = None  # close code and reason other than the session's

    @property
    def error_source(self) -> str:
        """The ``source`` of the error events about the client's messages."""
        return self.label

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
        code, reason = self.close_with or (close_code_for(reason), reason)
        settings: Any = self.settings
        if self.outbox is not None:
            self.goodbye(reason)
            self.closed = True
            await self.outbox.drain(settings.close_timeout)
            await self.outbox.aclose()
        self.closed = True
        self.bad_log.flush()
        ws = self.ws
        if ws is not None and ws.prepared and not ws.closed:
            await ws.close(code=code, message=reason.encode()[:123])

    # -- reading --------------------------------------------------------------
    async def on_text(self, session: AgentSession, text: str) -> bool:
        """Handle a text message; False ends the call."""
        return True

    async def on_binary(self, session: AgentSession, data: bytes) -> bool:
        """Handle a binary message; False ends the call."""
        return True

    def good_message(self) -> None:
        """A valid message came in: the count of bad ones in a row restarts."""
        self.bad_in_a_row = 0

    def bad_message(self, session: AgentSession, text: str) -> bool:
        """Log a bad message and report it as an ``error`` event, both rate-limited.

        Returns:
            False once more than ``max_bad_messages`` came in a row: the
            socket is then closed with 1008 ("too many bad messages").
        """
        self.bad_in_a_row += 1
        verdict = self.bad_log.throttle.hit()
        if verdict.suppressed:
            self.bad_log.summary(verdict.suppressed)
            self._error_event(session, f"{verdict.suppressed} more bad messages suppressed")
        if verdict.report:
            logger.warning("{}: {}", self.label, text)
            self._error_event(session, text)
        if self.bad_in_a_row > self.max_bad_messages:
            logger.warning("{}: {} bad messages in a row; closing the connection", self.label, self.bad_in_a_row)
            self.close_with = (CLOSE_POLICY_VIOLATION, "too many bad messages")
            return False
        return True

    def _error_event(self, session: AgentSession, message: str) -> None:
        # Not session.report_error: that logs at ERROR, once per message; this is throttled already.
        session.emit(
            "error", {"source": self.error_source, "message": message, "recoverable": True, "kind": "bad_request"}
        )

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
    async def run_session(cls, server: SessionServer, transport: SocketTransport, resume_id: str | None = None) -> None:
        """Open a session on ``transport`` (after ``server.admit()``) and serve it to the end.

        Args:
            server: The session server.
            transport: The connection's transport.
            resume_id: The id of a dropped session to resume (validated by
                the caller), or None for a new session.

        Raises:
            OSError: A connection-level failure (logged by :func:`guarded`).
        """
        ws = transport.ws
        assert ws is not None
        timeout: float = getattr(transport.settings, "open_timeout", 60.0)
        # Only when set: a server without session resume keeps working.
        extra: dict[str, Any] = {} if resume_id is None else {"resume_id": resume_id}
        try:
            # The agent factory or a provider's start could hang: the reserved place must come back.
            async with asyncio.timeout(timeout):
                session = await server.open_session(transport, reserved=True, **extra)
        except Exception as exc:
            await cls._not_started(transport, exc, timeout)
            if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
                raise  # connection-level: the endpoint logs it once, rate-limited
            return
        try:
            await transport.serve(session)
        except OSError:
            raise  # connection-level: the endpoint logs it, rate-limited (the session closes below)
        except Exception as exc:
            logger.opt(exception=exc).error("{}: reading the socket failed", transport.label)
        finally:
            await session.close(reason="hangup")

    @staticmethod
    async def _not_started(transport: SocketTransport, exc: Exception, timeout: float) -> None:
        """Say why a session did not start, and close the socket (1013 when refused, else 1011)."""
        code, reason = CLOSE_INTERNAL_ERROR, "the session could not start"
        if isinstance(exc, AdmissionError):  # e.g. the session to resume still runs on another worker
            code, reason = CLOSE_TRY_AGAIN_LATER, f"try again later: {exc}"
            logger.info("{}: refused ({}): {}", transport.label, code, reason)
        elif isinstance(exc, TimeoutError):
            logger.warning("{}: the session did not start within {:g} s", transport.label, timeout)
            reason += " in time"
        elif not isinstance(exc, OSError):  # a bug or a broken provider: the traceback helps
            logger.opt(exception=exc).error("{}: {}", transport.label, reason)
        transport.close_with = (code, reason)
        await transport.aclose()
