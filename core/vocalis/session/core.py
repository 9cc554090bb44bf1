"""The session as its own parts see it: a typed Protocol of its internals.

The speech queue, the lifecycle, the adapters for the pipeline and the tool
runner, and the wake-up timer each work on the session through
:class:`SessionCore`, so none of them imports the session's module:
:class:`~vocalis.session.agent_session.AgentSession` builds them and
satisfies it. :func:`run_guarded` is how they all call hooks and components
whose failures must not stop the session.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from vocalis.providers.base import ProviderError
from vocalis.session_api import SessionAPI

if TYPE_CHECKING:
    from vocalis.audio import AudioFrame
    from vocalis.observability.recorder import MetricsRecorder
    from vocalis.observability.telemetry import SessionTracer
    from vocalis.pipeline.base import Pipeline
    from vocalis.providers.transport import AudioOutput, Transport
    from vocalis.session.agent import Agent
    from vocalis.session.background import BackgroundAudioConfig
    from vocalis.session.flow import ConversationFlow
    from vocalis.session.limits import SessionLimits
    from vocalis.stages import Observers
    from vocalis.tools.runner import ToolRunner


class SessionCore(SessionAPI, Protocol):
    """The session's components and settings, as its parts use them.

    The attributes are the session's own (documented on ``AgentSession``);
    the lifecycle sets ``agent``, ``transport`` and ``audio_output``.
    """

    agent: Agent
    pipeline: Pipeline
    conversation_flow: ConversationFlow | None
    transport: Transport | None
    audio_output: AudioOutput
    tools: ToolRunner
    recorder: MetricsRecorder
    observers: Observers
    tracer: SessionTracer | None
    limits: SessionLimits
    background_audio: BackgroundAudioConfig | None
    wake_up: float | None
    on_wake_up: Callable[[], Any] | None
    error_message: str | None
    close_reason: str
    start_error: Exception | None

    def on(self, event: Any, handler: Any = None) -> Any:
        """Add an event handler; usable as a decorator."""
        ...

    def emit(self, event: Any, *args: Any) -> None:
        """Emit an event to its handlers."""
        ...

    def push_audio(self, frame: AudioFrame) -> None:
        """Feed one frame of user audio (called by transports)."""
        ...

    def on_any(self, handler: Callable[[str, tuple[Any, ...]], Any]) -> None:
        """Call ``handler(event, args)`` for every event."""
        ...

    def emit_task(self, awaitable: Awaitable[Any], source: str) -> None:
        """Run a user callback's coroutine as a tracked task; report failures."""
        ...

    def request_handoff(self, agent: Agent) -> None:
        """Switch to ``agent`` once the current utterance ends."""
        ...

    def trace(self, tracer_provider: Any = None) -> SessionTracer:
        """Send the session's spans to OpenTelemetry."""
        ...

    async def aclose_handlers(self) -> None:
        """Wait briefly for running async handlers, then cancel the rest."""
        ...


async def run_guarded(awaitable: Awaitable[Any], source: str, report: Callable[[str, BaseException], None]) -> None:
    """Await ``awaitable``; a failure is reported as ``source``'s, not raised."""
    try:
        await awaitable
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        report(source, exc)


def describe_error(source: str, error: BaseException | str, *, recoverable: bool) -> tuple[str, str, bool, str]:
    """What an ``error`` event says of ``error``: ``(source, message, recoverable, kind)``.

    A :class:`~vocalis.providers.base.ProviderError` names its provider (the
    source), its kind, and whether it can go on (it knows best: a refused
    key stays refused); anything else is ``"unknown"``.
    """
    if not isinstance(error, BaseException):
        return source, error, recoverable, "unknown"
    if not isinstance(error, ProviderError):
        return (
            source,
            (f"{type(error).__name__}: {error}" if str(error) else type(error).__name__),
            recoverable,
            "unknown",
        )
    if error.provider:
        source, message = error.provider, str(error).removeprefix(f"{error.provider}: ")
    else:
        message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return source, message, recoverable and error.recoverable, error.kind.value
