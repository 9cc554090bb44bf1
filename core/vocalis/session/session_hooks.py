"""What a session wires up around itself: agent hooks, the job, start options.

Kept out of :mod:`vocalis.session.agent_session` so that module stays about
the conversation itself. As in VideoSDK:

- the agent's ``on_speech_in`` / ``on_speech_out`` hooks are called for the
  session events of the same names (sync or async hooks; a failure is
  reported as an ``error`` event, never raised into the pipeline);
- a session made while a :class:`~vocalis.session.job.JobContext` is current
  (inside ``vocalis run`` or :func:`~vocalis.session.job.run_job`) registers
  its ``close`` as one of the job's shutdown callbacks;
- ``session.start(**options)`` hands its keyword arguments to the pipeline's
  ``attach``, checked before anything starts.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from vocalis.event_types import SpeechInEvent, SpeechOutEvent
    from vocalis.pipeline.base import Pipeline
    from vocalis.session.agent import Agent
    from vocalis.session.core import SessionCore


class ShutdownRegistry(Protocol):
    """What a session needs of a job: :class:`~vocalis.session.job.JobContext` is one."""

    shutdown_reason: str

    def add_shutdown_callback(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` when the job shuts down."""
        ...

    def remove_shutdown_callback(self, callback: Callable[[], object]) -> None:
        """Forget ``callback``."""
        ...


# Defined here rather than in vocalis.session.job, which imports the session
# module (for types): the session finds its job without an import cycle.
current_job: contextvars.ContextVar[ShutdownRegistry | None] = contextvars.ContextVar(
    "vocalis_job_context", default=None
)
"""The job whose entrypoint runs in this context (set by ``run_job``)."""

AgentHook = Literal["on_speech_in", "on_speech_out"]
"""The agent hooks a session calls, named after the events that trigger them."""

AGENT_HOOKS: tuple[AgentHook, ...] = ("on_speech_in", "on_speech_out")


def check_session_arguments(
    agent: Agent, wake_up: float | None, background_audio: object, error_message: object, limits: object
) -> None:
    """Refuse an ``AgentSession``'s arguments that would fail later, at the constructor.

    Raises:
        RuntimeError: ``agent`` belongs to a session that still runs.
        ValueError: ``wake_up`` is not a positive number of seconds.
        TypeError: ``background_audio``, ``error_message`` or ``limits`` of the wrong type.
    """
    from vocalis.session.limits import SessionLimits

    if agent.session is not None and not agent.session.closed:
        raise RuntimeError(
            f"agent {agent.name!r} already belongs to a running session; "
            "create one Agent per session (its chat context is per conversation)"
        )
    if wake_up is not None and wake_up <= 0:
        raise ValueError("wake_up must be a positive number of seconds")
    if error_message is not None and not isinstance(error_message, str):
        raise TypeError(f"error_message expects a str or None, not {type(error_message).__name__}")
    if background_audio is not None:
        from vocalis.session.background import BackgroundAudioConfig  # only when used: it loads audio code

        if not isinstance(background_audio, BackgroundAudioConfig):
            raise TypeError("background_audio expects a BackgroundAudioConfig")
    if limits is not None and not isinstance(limits, SessionLimits):
        raise TypeError("limits expects a SessionLimits")


def call_agent_hook(session: SessionCore, hook: AgentHook, data: SpeechInEvent | SpeechOutEvent) -> None:
    """Call the current agent's ``hook`` with an event's payload.

    The agent is looked up at each call, so after a handoff the new agent's
    hook runs. A coroutine is run as a tracked task of the session; an
    exception (raised at once or by the task) becomes an ``error`` event
    whose source is ``agent.<hook>``.
    """
    source = f"agent.{hook}"
    method: Callable[[SpeechInEvent | SpeechOutEvent], object] = getattr(session.agent, hook)
    try:
        result = method(data)
    except Exception as exc:  # a user's hook: report, keep the conversation going
        session.report_error(source, exc)
        return
    if inspect.isawaitable(result):
        session.emit_task(result, source)


def wire_agent_hooks(session: SessionCore) -> None:
    """Subscribe ``session`` to its own speech events, to call the agent's hooks."""
    session.on("on_speech_in", lambda data: call_agent_hook(session, "on_speech_in", data))
    session.on("on_speech_out", lambda data: call_agent_hook(session, "on_speech_out", data))


def register_with_job(session: SessionCore) -> bool:
    """Add ``session.close`` to the current job's shutdown callbacks, if a job runs.

    Returns:
        Whether a job context was current.
    """
    ctx = current_job.get()
    if ctx is None:
        return False

    async def close_session() -> None:
        await session.close(reason=ctx.shutdown_reason or "shutdown")

    close_session.__qualname__ = f"close of {session.id}"
    ctx.add_shutdown_callback(close_session)
    # A long job makes many sessions: a closed one is not kept alive by its callback.
    session.on("close", lambda _: ctx.remove_shutdown_callback(close_session))
    return True


def check_start_options(pipeline: Pipeline, options: Mapping[str, object]) -> None:
    """Fail early when ``pipeline.attach`` does not take ``options``.

    Raises:
        TypeError: An option the pipeline's ``attach`` has no parameter for.
    """
    if not options:
        return
    try:
        inspect.signature(pipeline.attach).bind(None, **options)
    except TypeError as exc:
        raise TypeError(
            f"session.start() options {sorted(options)} are passed to {type(pipeline).__name__}.attach(), "
            f"which does not take them ({exc})"
        ) from None


async def attach_pipeline(pipeline: Pipeline, port: object, options: Mapping[str, object]) -> None:
    """``await pipeline.attach(port, **options)`` (options checked by :func:`check_start_options`)."""
    # The base signature takes no options; subclasses may add keyword parameters.
    attach: Callable[..., Awaitable[None]] = pipeline.attach
    await attach(port, **options)
