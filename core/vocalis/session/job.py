"""Running sessions as a job: signals, shutdown callbacks, metrics and traces.

``vocalis run module:entrypoint`` calls ``await entrypoint(ctx)`` with a
:class:`JobContext`; start sessions through ``ctx.start_session`` and they are
closed, and their metrics flushed, when the process gets SIGINT or SIGTERM.
While the entrypoint runs, its context is current (:func:`current_job_context`):
an :class:`~vocalis.AgentSession` made then registers its ``close`` as a
shutdown callback, as in VideoSDK.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from loguru import logger

from vocalis.observability.metrics_file import MetricsFileWriter
from vocalis.session.session_hooks import current_job

if TYPE_CHECKING:
    from vocalis.providers.transport import Transport
    from vocalis.session.agent_session import AgentSession

ShutdownCallback = Callable[[], Any]


def current_job_context() -> JobContext | None:
    """The job whose entrypoint is running (in this task or the one that made it), if any."""
    return cast("JobContext | None", current_job.get())


class JobContext:
    """What an entrypoint gets: start sessions, register clean-up, await shutdown.

    Args:
        metrics_path: Write every session's metrics to this JSONL file.
        tracer_provider: Trace sessions to this OpenTelemetry provider.
    """

    def __init__(self, *, metrics_path: str | Path | None = None, tracer_provider: Any = None) -> None:
        self.sessions: list[AgentSession] = []
        self._callbacks: list[ShutdownCallback] = []
        self._shutdown = asyncio.Event()
        self._all_closed = asyncio.Event()
        self.shutdown_reason = ""
        self._writer = MetricsFileWriter(metrics_path) if metrics_path else None
        self._tracer_provider = tracer_provider
        self._closed = False

    def add_shutdown_callback(self, callback: ShutdownCallback) -> None:
        """Run ``callback`` (sync or async) when the job shuts down, after sessions close."""
        self._callbacks.append(callback)

    def remove_shutdown_callback(self, callback: ShutdownCallback) -> None:
        """Forget ``callback`` (no error when it was not added)."""
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    async def start_session(self, session: AgentSession, transport: Transport | None = None) -> AgentSession:
        """Start ``session`` under this job: its metrics and traces are recorded."""
        if self._writer is not None:
            self._writer.attach(session)
        self.sessions.append(session)
        session.on("close", lambda _: self._session_closed())
        await session.start(transport)
        if self._tracer_provider is not None:
            session.trace(self._tracer_provider)
        return session

    def _session_closed(self) -> None:
        if all(s.closed for s in self.sessions):
            self._all_closed.set()

    async def wait_for_sessions(self) -> None:
        """Return when every session started so far has closed."""
        if all(s.closed for s in self.sessions):
            return
        self._all_closed.clear()
        await self._all_closed.wait()

    def shutdown(self, reason: str = "requested") -> None:
        """Ask the job to stop (safe to call from a signal handler)."""
        if not self._shutdown.is_set():
            self.shutdown_reason = reason
            logger.info("shutting down: {}", reason)
            self._shutdown.set()

    @property
    def shutting_down(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._shutdown.is_set()

    async def wait_for_shutdown(self) -> None:
        """Return when :meth:`shutdown` is called."""
        await self._shutdown.wait()

    async def aclose(self) -> None:
        """Close every session, run the shutdown callbacks, flush metrics and traces."""
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(s.close() for s in self.sessions), return_exceptions=True)
        for callback in self._callbacks:
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("shutdown callback {} failed", getattr(callback, "__qualname__", callback))
        if self._writer is not None:
            self._writer.close()
        provider = self._tracer_provider or _global_sdk_provider()
        if provider is not None and hasattr(provider, "force_flush"):
            provider.force_flush()


def _log_failure(task: asyncio.Future[Any]) -> bool:
    """Log the entrypoint's exception, if it raised one; returns whether it did."""
    if not task.done() or task.cancelled() or task.exception() is None:
        return False
    logger.opt(exception=task.exception()).error("the entrypoint failed")
    return True


def _global_sdk_provider() -> Any:
    from vocalis.observability.telemetry import tracing_configured

    if not tracing_configured():
        return None
    from opentelemetry import trace

    return trace.get_tracer_provider()


async def run_job(
    entrypoint: Callable[[JobContext], Awaitable[Any]],
    *,
    metrics_path: str | Path | None = None,
    tracer_provider: Any = None,
    handle_signals: bool = True,
) -> JobContext:
    """Run ``entrypoint(ctx)`` until it finishes (and its sessions close) or a signal arrives.

    SIGINT and SIGTERM request a graceful shutdown: every session is closed,
    shutdown callbacks run, metrics and traces are flushed.
    """
    loop = asyncio.get_running_loop()
    ctx = JobContext(metrics_path=metrics_path, tracer_provider=tracer_provider)
    installed: list[int] = []
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, ctx.shutdown, signal.Signals(sig).name)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                pass
    # The entrypoint's task copies the context now: sessions it makes find the job.
    token = current_job.set(ctx)
    try:
        task: asyncio.Future[Any] = asyncio.ensure_future(entrypoint(ctx))
    finally:
        current_job.reset(token)
    stop = loop.create_task(ctx.wait_for_shutdown())
    try:
        await asyncio.wait([task, stop], return_when=asyncio.FIRST_COMPLETED)
        logged = _log_failure(task)  # now, not once its sessions have closed
        if not stop.done():
            # The entrypoint ended but sessions may still run (a session that
            # failed to start is closed): wait for them or a signal.
            sessions = loop.create_task(ctx.wait_for_sessions())
            await asyncio.wait([sessions, stop], return_when=asyncio.FIRST_COMPLETED)
            sessions.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if not logged:
            _log_failure(task)
    finally:
        stop.cancel()
        await ctx.aclose()
        for signum in installed:
            loop.remove_signal_handler(signum)
    return ctx
