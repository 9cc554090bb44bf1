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
from typing import TYPE_CHECKING

from loguru import logger

from vocalis.providers.session_store import MemorySessionStore
from vocalis.serve.load import LoadMonitor, Verdict, cpu_share
from vocalis.serve.options import AdmissionError as AdmissionError
from vocalis.serve.options import ServeOptions as ServeOptions
from vocalis.serve.resume import Resumer, ResumeRefused

if TYPE_CHECKING:
    from vocalis.event_types import ErrorEvent
    from vocalis.observability.metrics_file import MetricsFileWriter
    from vocalis.pipeline.base import Pipeline
    from vocalis.providers.transport import Transport
    from vocalis.serve.edges import ConnectionGuard
    from vocalis.serve.prometheus import ServeMetrics
    from vocalis.session.agent import Agent
    from vocalis.session.agent_session import AgentSession
    from vocalis.states import SessionEvent

AgentFactory = Callable[[], "Agent | Awaitable[Agent]"]
PipelineFactory = Callable[[], "Pipeline"]


_TURN_GRACE = 10.0  # seconds a reply under way may take to finish once the drain is over
_CLOSE_REASONS = frozenset({"closed", "idle", "hangup", "shutdown", "errors"})


def _new_session_id() -> str:
    """A session id that no other worker or host will make (clients resume with it)."""
    return f"s_{secrets.token_urlsafe(12)}"


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
        self._errors: dict[AgentSession, int] = {}
        self._metrics: MetricsFileWriter | None = None
        if self.options.metrics_path is not None:
            from vocalis.observability.metrics_file import MetricsFileWriter

            self._metrics = MetricsFileWriter(self.options.metrics_path)
        self.monitor = LoadMonitor(cpu_share(self.options.workers))
        self.resumer = Resumer(self.options.store or MemorySessionStore(), grace=self.options.resume_grace)
        self.guard: ConnectionGuard | None = None  # set by serve(): the socket's connection counts
        self.prometheus: ServeMetrics | None = None
        from vocalis.serve import prometheus

        if prometheus.available():
            self.prometheus = prometheus.ServeMetrics(
                active=lambda: len(self.sessions),
                capacity=lambda: self.options.max_sessions,
                ready=lambda: self.readiness().ready,
                loop_lag=lambda: self.monitor.loop_lag,
                load=self.load,
            )

    @property
    def pending(self) -> int:
        """Places reserved by :meth:`admit` whose sessions have not started yet."""
        return self._pending

    def load(self) -> float:
        """The load figure: ``options.load_function()``, or this process's CPU share over 2.5 s."""
        function = self.options.load_function
        if function is None:
            return self.monitor.cpu
        try:
            return float(function())
        except Exception as exc:  # a broken load function must not take readiness down with it
            logger.warning("the load function failed: {}", exc)
            return 0.0

    def readiness(self) -> Verdict:
        """Whether a new session is welcome now (``/readyz``), and if not why."""
        options = self.options
        if not self.accepting:
            return Verdict(False, "draining", max(1, int(options.drain_timeout)))
        if len(self.sessions) + self._pending >= options.max_sessions:
            return Verdict(False, "full", 5)
        if options.max_loop_lag and self.monitor.loop_lag >= options.max_loop_lag:
            return Verdict(False, "lagging", 2)
        if options.max_load and self.load() >= options.max_load:
            return Verdict(False, "overloaded", 2)
        return Verdict(True)

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
        """Reserve a place for a new session, or raise :class:`AdmissionError`.

        Refused while draining, at ``max_sessions``, and over the load or
        loop-lag threshold: the same verdict ``/readyz`` gives.
        """
        ready = self.readiness()
        if not ready.ready:
            if self.prometheus is not None:
                self.prometheus.refused.labels(ready.reason).inc()
            messages = {
                "draining": "the server is shutting down",
                "full": f"the server is full ({self.options.max_sessions} sessions)",
            }
            message = messages.get(ready.reason, f"the server is {ready.reason}")
            raise AdmissionError(message, 503, retry_after=ready.retry_after, reason=ready.reason)
        self._pending += 1

    def release(self) -> None:
        """Give back a place reserved by :meth:`admit` that was not used."""
        self._pending = max(0, self._pending - 1)

    async def open_session(
        self, transport: Transport, *, reserved: bool = False, resume_id: str | None = None
    ) -> AgentSession:
        """Start a session on ``transport``.

        Args:
            transport: The connection's transport.
            reserved: True when the caller already called :meth:`admit`
                (e.g. before answering a WebRTC offer).
            resume_id: The id of an earlier session to continue (the client
                reconnected): its conversation is restored when the store
                still has it; otherwise a new session starts.

        Raises:
            AdmissionError: Full, shutting down, overloaded, or the session
                to resume still runs on another worker (409).
        """
        from vocalis.session.agent_session import AgentSession

        if not reserved:
            self.admit()
        try:
            snapshot = None
            if resume_id is not None:
                try:
                    snapshot = await self.resumer.restore(resume_id)
                except ResumeRefused as exc:
                    raise AdmissionError(str(exc), 409, retry_after=2, reason="busy_elsewhere") from None
            agent = self._agent_factory()
            if inspect.isawaitable(agent):
                agent = await agent
            restored = Resumer.apply(snapshot, agent) if snapshot is not None else 0
            session = AgentSession(
                agent,
                self._pipeline_factory(),
                session_id=snapshot.session_id if snapshot is not None else _new_session_id(),
                error_message=self.options.error_message,
                record_text=self.options.record_text,
            )
            if snapshot is None:
                await self.resumer.claim_new(session.id)
            loop = asyncio.get_running_loop()
            self.sessions[session] = loop.time()
            self.opened += 1
        finally:
            self.release()
        session.on_any(lambda name, _args: self._touch(session) if name in _ACTIVITY_EVENTS else None)
        session.on("close", lambda event: self._on_close(session, event["reason"]))
        session.on("error", lambda event: self._count_error(session, event))
        self.resumer.follow(session)
        if self._metrics is not None:
            self._metrics.attach(session)
        if self.prometheus is not None:
            self.prometheus.attach(session)
            self.prometheus.admitted.inc()
            if snapshot is not None:
                self.prometheus.resumed.inc()
        try:
            await session.start(transport, resume=snapshot is not None)
        except BaseException:
            self.sessions.pop(session, None)
            await session.close()
            raise
        self.monitor.start()
        self._ensure_watcher()
        transport.send_event("session", {"session_id": session.id, "resumed": snapshot is not None, "items": restored})
        verb = f"resumed with {restored} items" if snapshot is not None else "opened"
        logger.info("session {} {} ({} running)", session.id, verb, len(self.sessions))
        return session

    def _on_close(self, session: AgentSession, reason: str) -> None:
        self.sessions.pop(session, None)
        self._errors.pop(session, None)
        if self.prometheus is not None:
            self.prometheus.closed.labels(reason if reason in _CLOSE_REASONS else "other").inc()

    def _count_error(self, session: AgentSession, event: ErrorEvent) -> None:
        """Close a session after ``max_errors`` unrecoverable errors: it cannot do its job."""
        if event["recoverable"] or not self.options.max_errors or session.closed:
            return
        count = self._errors[session] = self._errors.get(session, 0) + 1
        if count == self.options.max_errors:
            logger.warning("session {}: {} unrecoverable errors, closing it", session.id, count)
            task = asyncio.get_running_loop().create_task(self._close_when_quiet(session))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _close_when_quiet(self, session: AgentSession) -> None:
        """Close once the apology for the last error was said (within ``_TURN_GRACE``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _TURN_GRACE
        await asyncio.sleep(0)  # the failed turn schedules its apology after reporting the error
        while session.busy and loop.time() < deadline and not session.closed:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        self.sessions.pop(session, None)
        await session.close(reason="errors")

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
        """Stop accepting, let sessions finish up to ``timeout``, close the rest.

        At the deadline a session is closed between turns: one whose user
        turn is being answered gets up to ``_TURN_GRACE`` more seconds to
        finish that reply, so a call moved to another worker (resume) never
        loses or repeats a turn that was half done.
        """
        self.accepting = False
        timeout = self.options.drain_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self.sessions:
            logger.info("draining {} session(s), up to {:g} s", len(self.sessions), timeout)
        while self.sessions and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(min(0.1, max(0.0, deadline - loop.time())))
        last_call = loop.time() + _TURN_GRACE
        while self.sessions:
            for session in [s for s in self.sessions if not s.busy or loop.time() >= last_call]:
                self._close_soon(session, reason="shutdown")
            if self.sessions:
                await asyncio.sleep(0.05)
        await self.aclose()

    async def aclose(self) -> None:
        """Close every session, stop the idle watcher, close the metrics file. Idempotent."""
        self.accepting = False
        for session in list(self.sessions):
            self._close_soon(session, reason="shutdown")
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        await self.resumer.aclose()  # every closed session's final save, then the store
        await self.monitor.aclose()
        if self._metrics is not None:
            # Every session's summary line is written by now (on its close).
            self._metrics.close()
        watcher, self._watcher = self._watcher, None
        if watcher is not None and not watcher.done():
            watcher.cancel()
            await asyncio.wait([watcher])
