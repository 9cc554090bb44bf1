"""Many sessions in one process: admission, limits, idle timeouts, drain.

A :class:`SessionServer` is what ``vocalis serve`` runs. Transport plugins
(WebRTC, telephony WebSockets) accept connections, build a transport per
connection and call :meth:`SessionServer.open_session`; the server builds a
fresh agent and pipeline for it, enforces the limits and closes sessions that
go idle. Models are shared because the plugins cache them per process; every
session has its own agent, pipeline, streams and event emitter.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from vocalis.observability.metrics_file import MetricsFileWriter
    from vocalis.pipeline.base import Pipeline
    from vocalis.providers.transport import Transport
    from vocalis.session.agent import Agent
    from vocalis.session.agent_session import AgentSession
    from vocalis.states import SessionEvent

AgentFactory = Callable[[], "Agent | Awaitable[Agent]"]
PipelineFactory = Callable[[], "Pipeline"]


class AdmissionError(Exception):
    """A session was refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ServeOptions:
    """Limits and security of a serving process.

    Attributes:
        host: Interface to listen on (loopback by default: nothing outside
            the machine can connect unless asked for).
        port: TCP port.
        token: Access token every request must carry (``?token=``, an
            ``Authorization: Bearer`` header, or the transport's own way);
            generated when None.
        allowed_origins: Browser origins allowed besides the page's own
            (``https://app.example.com``); ``*`` allows any.
        max_sessions: Sessions at once; more are refused with 503.
        idle_timeout: Seconds with nobody active before a session is
            closed: the clock runs only while the user is not speaking and
            the agent is neither thinking (LLM, tools) nor speaking.
        drain_timeout: Seconds running sessions get to finish on shutdown.
        max_message_bytes: Largest HTTP body or WebSocket message accepted.
        metrics_path: Write every session's metrics (a header line, one
            line per turn, the summary) to this JSONL file; see
            ``vocalis report``.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = field(default=None, repr=False)  # a credential: never in reprs
    allowed_origins: tuple[str, ...] = ()
    max_sessions: int = 20
    idle_timeout: float = 300.0
    drain_timeout: float = 30.0
    max_message_bytes: int = 1 << 20
    metrics_path: str | Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# Events that mark a change of activity (someone starts or stops): they
# restart the idle clock, so it counts from when the last activity ended.
_ACTIVITY_EVENTS: tuple[SessionEvent, ...] = (
    "user_state_changed",
    "agent_state_changed",
    "on_speech_in",
    "on_speech_out",
)


def _active(session: AgentSession) -> bool:
    """Whether someone is active: the user speaking, the agent thinking or speaking.

    Activity lasts as long as it goes on, however long that is (a long
    monologue, a long reply): only the time after it ends counts as idle.
    """
    from vocalis.states import UserState

    return (
        session.user_state is UserState.SPEAKING
        or session.current_speech is not None  # LLM, tools, TTS or playout of a reply
        or session.audio_output.speaking
    )


class SessionServer:
    """Owns every session of a serving process.

    Args:
        agent_factory: Returns a new :class:`~vocalis.Agent` (or an awaitable
            of one) per session.
        pipeline_factory: Returns a new pipeline per session.
        options: Limits and security.
    """

    def __init__(
        self,
        agent_factory: AgentFactory,
        pipeline_factory: PipelineFactory,
        options: ServeOptions | None = None,
    ) -> None:
        self.options = options or ServeOptions()
        self.token = self.options.token or secrets.token_urlsafe(18)
        self._agent_factory = agent_factory
        self._pipeline_factory = pipeline_factory
        self.sessions: dict[AgentSession, float] = {}  # session -> last activity
        self.accepting = True
        self.opened = 0
        self._pending = 0
        self._watcher: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._metrics: MetricsFileWriter | None = None
        if self.options.metrics_path is not None:
            from vocalis.observability.metrics_file import MetricsFileWriter

            self._metrics = MetricsFileWriter(self.options.metrics_path)

    # -- admission ---------------------------------------------------------------
    def check_token(self, token: str | None) -> bool:
        """Whether ``token`` is this server's (constant-time comparison)."""
        if token is None:
            return False
        # Header values may hold undecodable bytes (as lone surrogates): compare, never raise.
        return hmac.compare_digest(token.encode("utf-8", "surrogatepass"), self.token.encode())

    def check_origin(self, origin: str | None, own_origin: str) -> bool:
        """Whether a browser ``Origin`` may connect.

        Requests without an ``Origin`` (telephony providers, scripts) pass:
        the token guards them. Browsers always send one.
        """
        if not origin:
            return True
        allowed = self.options.allowed_origins
        return origin == own_origin or "*" in allowed or origin in allowed

    def admit(self) -> None:
        """Reserve a place for a new session, or raise :class:`AdmissionError`."""
        if not self.accepting:
            raise AdmissionError("the server is shutting down", 503)
        if len(self.sessions) + self._pending >= self.options.max_sessions:
            raise AdmissionError(f"the server is full ({self.options.max_sessions} sessions)", 503)
        self._pending += 1

    def release(self) -> None:
        """Give back a place reserved by :meth:`admit` that was not used."""
        self._pending = max(0, self._pending - 1)

    async def open_session(self, transport: Transport, *, reserved: bool = False) -> AgentSession:
        """Start a session on ``transport``.

        Args:
            transport: The connection's transport.
            reserved: True when the caller already called :meth:`admit`
                (e.g. before answering a WebRTC offer).

        Raises:
            AdmissionError: Full or shutting down.
        """
        from vocalis.session.agent_session import AgentSession

        if not reserved:
            self.admit()
        try:
            agent = self._agent_factory()
            if inspect.isawaitable(agent):
                agent = await agent
            session = AgentSession(agent, self._pipeline_factory())
            loop = asyncio.get_running_loop()
            self.sessions[session] = loop.time()
            self.opened += 1
        finally:
            self.release()
        for event in _ACTIVITY_EVENTS:
            session.on(event, lambda *_: self._touch(session))
        session.on("close", lambda *_: self.sessions.pop(session, None))
        if self._metrics is not None:
            self._metrics.attach(session)
        try:
            await session.start(transport)
        except BaseException:
            self.sessions.pop(session, None)
            await session.close()
            raise
        self._ensure_watcher()
        logger.info("session {} opened ({} running)", session.id, len(self.sessions))
        return session

    def _touch(self, session: AgentSession) -> None:
        if session in self.sessions:
            self.sessions[session] = asyncio.get_running_loop().time()

    # -- idle sessions -------------------------------------------------------------
    def _ensure_watcher(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch_idle())

    async def _watch_idle(self) -> None:
        # One timer for the whole server, not one per session.
        timeout = self.options.idle_timeout
        period = max(0.05, min(5.0, timeout / 4))
        loop = asyncio.get_running_loop()
        while self.sessions:
            await asyncio.sleep(period)
            now = loop.time()
            for session, last in list(self.sessions.items()):
                if _active(session):
                    self.sessions[session] = now  # idle starts only when all have stopped
                    continue
                if now - last >= timeout and not session.closed:
                    logger.info("session {} idle for {:.0f} s: closing", session.id, now - last)
                    self._close_soon(session, reason="idle")

    def _close_soon(self, session: AgentSession, *, reason: str) -> None:
        self.sessions.pop(session, None)
        task = asyncio.get_running_loop().create_task(session.close(reason=reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # -- shutdown ------------------------------------------------------------------
    async def drain(self, timeout: float | None = None) -> None:
        """Stop accepting, let sessions finish up to ``timeout``, close the rest."""
        self.accepting = False
        timeout = self.options.drain_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self.sessions:
            logger.info("draining {} session(s), up to {:g} s", len(self.sessions), timeout)
        while self.sessions and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(min(0.1, max(0.0, deadline - loop.time())))
        for session in list(self.sessions):
            self._close_soon(session, reason="shutdown")
        await self.aclose()

    async def aclose(self) -> None:
        """Close every session, stop the idle watcher, close the metrics file. Idempotent."""
        self.accepting = False
        for session in list(self.sessions):
            self._close_soon(session, reason="shutdown")
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self._metrics is not None:
            # Every session's summary line is written by now (on its close).
            self._metrics.close()
        watcher, self._watcher = self._watcher, None
        if watcher is not None and not watcher.done():
            watcher.cancel()
            await asyncio.wait([watcher])
