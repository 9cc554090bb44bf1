"""Per-object event emitters.

Each session owns its emitter; there is no process-wide bus, so sessions in
one process never see each other's events. :class:`EventEmitter` takes any
event name; :class:`SessionEventEmitter`, the base of
:class:`~vocalis.session.AgentSession`, takes only the session events, each
with its payload type (:mod:`vocalis.event_types`), so mypy checks both.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any, ClassVar, Literal, TypeVar, overload

from loguru import logger

from vocalis.event_types import (
    AgentHandoffEvent,
    AgentStateChangedEvent,
    AgentTurnEvent,
    BackchannelEvent,
    CloseEvent,
    EndOfTurnProbabilityEvent,
    ErrorEvent,
    FalseInterruptionEvent,
    FunctionCallEvent,
    InterruptionEvent,
    MetricsCollectedEvent,
    PreemptiveGenerationEvent,
    SpeechInEvent,
    SpeechOutEvent,
    UserStateChangedEvent,
    UserTurnEvent,
    WakeUpEvent,
)
from vocalis.states import SESSION_EVENTS

Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)
P = TypeVar("P")

EventHandler = Callable[[P], object]
"""A handler of an event whose payload type is ``P`` (sync or async)."""

HandlerDecorator = Callable[[EventHandler[P]], EventHandler[P]]
"""What ``@session.on("event")`` returns: it registers the function and returns it."""


class EventEmitter:
    """Register handlers by event name and emit payloads to them.

    Handlers may be plain functions or coroutine functions. Coroutine
    handlers run as tasks that the emitter tracks, so their owner can wait
    for or cancel them on close. A handler that raises is logged and does not
    stop the other handlers or the emitter's owner.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._any: list[Callable[[str, tuple[object, ...]], object]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def on_any(self, handler: Callable[[str, tuple[object, ...]], object]) -> None:
        """Call ``handler(event, args)`` for every event (recorders, forwarders)."""
        self._any.append(handler)

    def on(self, event: str, handler: H | None = None) -> Any:
        """Add a handler; usable directly or as ``@emitter.on("event")``."""
        if handler is None:

            def decorator(func: H) -> H:
                self.on(event, func)
                return func

            return decorator
        self._handlers.setdefault(event, []).append(handler)
        return handler

    def once(self, event: str, handler: Handler) -> Handler:
        """Add a handler that removes itself after its first call."""

        def wrapper(*args: Any) -> Any:
            self.off(event, wrapper)
            return handler(*args)

        return self.on(event, wrapper)  # type: ignore[no-any-return]

    def off(self, event: str, handler: Handler) -> None:
        """Remove a handler; removing one that is not there is a no-op."""
        handlers = self._handlers.get(event)
        if handlers and handler in handlers:
            handlers.remove(handler)

    def has_handlers(self, event: str) -> bool:
        """Whether anything listens to ``event`` (lets callers skip payload work)."""
        return bool(self._handlers.get(event))

    def emit(self, event: str, *args: Any) -> None:
        """Call every handler of ``event`` with ``args``."""
        for listener in self._any:
            try:
                listener(event, args)
            except Exception:
                logger.exception("listener {} raised on {!r}", _name(listener), event)
        handlers = self._handlers.get(event)
        if not handlers:
            return
        for handler in list(handlers):
            try:
                result = handler(*args)
            except Exception:
                logger.exception("handler {} for event {!r} raised", _name(handler), event)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.opt(exception=task.exception()).error("async event handler raised")

    async def aclose_handlers(self, timeout: float = 1.0) -> None:
        """Wait briefly for running async handlers, then cancel the rest."""
        if not self._tasks:
            return
        tasks = list(self._tasks)
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def remove_all(self) -> None:
        """Drop every handler."""
        self._handlers.clear()


class SessionEventEmitter(EventEmitter):
    """An emitter of the session events, typed: mypy checks names and payloads.

    ``on`` and ``emit`` take only the names of
    :data:`vocalis.states.SessionEvent`, each with its payload type from
    :mod:`vocalis.event_types` (a plain ``dict`` at run time), so a misspelt
    name or a wrong payload key is a type error. A handler gets the payload
    type (``Mapping[str, Any]`` also fits). At run time an unknown name is
    accepted but logged as a warning, since it is usually a typo; an event of
    a pipeline's own is emitted and handled through the untyped base class:
    ``EventEmitter.emit(session, "my_event", payload)``.

    The signatures are narrower than :class:`EventEmitter`'s on purpose (a
    session emits its own events), hence the ``override`` ignores.
    """

    EVENTS: ClassVar[frozenset[str]] = SESSION_EVENTS
    """Event names this emitter knows (registering another one logs a warning)."""

    # Narrower than EventEmitter.on on purpose: a session emits its own events.
    @overload  # type: ignore[override]
    def on(
        self, event: Literal["user_state_changed"], handler: EventHandler[UserStateChangedEvent]
    ) -> EventHandler[UserStateChangedEvent]: ...
    @overload
    def on(
        self, event: Literal["user_state_changed"], handler: None = None
    ) -> HandlerDecorator[UserStateChangedEvent]: ...
    @overload
    def on(
        self, event: Literal["agent_state_changed"], handler: EventHandler[AgentStateChangedEvent]
    ) -> EventHandler[AgentStateChangedEvent]: ...
    @overload
    def on(
        self, event: Literal["agent_state_changed"], handler: None = None
    ) -> HandlerDecorator[AgentStateChangedEvent]: ...
    @overload
    def on(
        self, event: Literal["on_speech_in"], handler: EventHandler[SpeechInEvent]
    ) -> EventHandler[SpeechInEvent]: ...
    @overload
    def on(self, event: Literal["on_speech_in"], handler: None = None) -> HandlerDecorator[SpeechInEvent]: ...
    @overload
    def on(
        self, event: Literal["on_speech_out"], handler: EventHandler[SpeechOutEvent]
    ) -> EventHandler[SpeechOutEvent]: ...
    @overload
    def on(self, event: Literal["on_speech_out"], handler: None = None) -> HandlerDecorator[SpeechOutEvent]: ...
    @overload
    def on(self, event: Literal["on_wake_up"], handler: EventHandler[WakeUpEvent]) -> EventHandler[WakeUpEvent]: ...
    @overload
    def on(self, event: Literal["on_wake_up"], handler: None = None) -> HandlerDecorator[WakeUpEvent]: ...
    @overload
    def on(self, event: Literal["user_turn"], handler: EventHandler[UserTurnEvent]) -> EventHandler[UserTurnEvent]: ...
    @overload
    def on(self, event: Literal["user_turn"], handler: None = None) -> HandlerDecorator[UserTurnEvent]: ...
    @overload
    def on(
        self, event: Literal["agent_turn"], handler: EventHandler[AgentTurnEvent]
    ) -> EventHandler[AgentTurnEvent]: ...
    @overload
    def on(self, event: Literal["agent_turn"], handler: None = None) -> HandlerDecorator[AgentTurnEvent]: ...
    @overload
    def on(
        self, event: Literal["function_call"], handler: EventHandler[FunctionCallEvent]
    ) -> EventHandler[FunctionCallEvent]: ...
    @overload
    def on(self, event: Literal["function_call"], handler: None = None) -> HandlerDecorator[FunctionCallEvent]: ...
    @overload
    def on(
        self, event: Literal["agent_handoff"], handler: EventHandler[AgentHandoffEvent]
    ) -> EventHandler[AgentHandoffEvent]: ...
    @overload
    def on(self, event: Literal["agent_handoff"], handler: None = None) -> HandlerDecorator[AgentHandoffEvent]: ...
    @overload
    def on(
        self, event: Literal["interruption"], handler: EventHandler[InterruptionEvent]
    ) -> EventHandler[InterruptionEvent]: ...
    @overload
    def on(self, event: Literal["interruption"], handler: None = None) -> HandlerDecorator[InterruptionEvent]: ...
    @overload
    def on(
        self, event: Literal["false_interruption"], handler: EventHandler[FalseInterruptionEvent]
    ) -> EventHandler[FalseInterruptionEvent]: ...
    @overload
    def on(
        self, event: Literal["false_interruption"], handler: None = None
    ) -> HandlerDecorator[FalseInterruptionEvent]: ...
    @overload
    def on(
        self, event: Literal["backchannel"], handler: EventHandler[BackchannelEvent]
    ) -> EventHandler[BackchannelEvent]: ...
    @overload
    def on(self, event: Literal["backchannel"], handler: None = None) -> HandlerDecorator[BackchannelEvent]: ...
    @overload
    def on(
        self, event: Literal["end_of_turn_probability"], handler: EventHandler[EndOfTurnProbabilityEvent]
    ) -> EventHandler[EndOfTurnProbabilityEvent]: ...
    @overload
    def on(
        self, event: Literal["end_of_turn_probability"], handler: None = None
    ) -> HandlerDecorator[EndOfTurnProbabilityEvent]: ...
    @overload
    def on(
        self, event: Literal["preemptive_generation"], handler: EventHandler[PreemptiveGenerationEvent]
    ) -> EventHandler[PreemptiveGenerationEvent]: ...
    @overload
    def on(
        self, event: Literal["preemptive_generation"], handler: None = None
    ) -> HandlerDecorator[PreemptiveGenerationEvent]: ...
    @overload
    def on(
        self, event: Literal["metrics_collected"], handler: EventHandler[MetricsCollectedEvent]
    ) -> EventHandler[MetricsCollectedEvent]: ...
    @overload
    def on(
        self, event: Literal["metrics_collected"], handler: None = None
    ) -> HandlerDecorator[MetricsCollectedEvent]: ...
    @overload
    def on(self, event: Literal["error"], handler: EventHandler[ErrorEvent]) -> EventHandler[ErrorEvent]: ...
    @overload
    def on(self, event: Literal["error"], handler: None = None) -> HandlerDecorator[ErrorEvent]: ...
    @overload
    def on(self, event: Literal["close"], handler: EventHandler[CloseEvent]) -> EventHandler[CloseEvent]: ...
    @overload
    def on(self, event: Literal["close"], handler: None = None) -> HandlerDecorator[CloseEvent]: ...
    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Add a handler; usable directly or as ``@session.on("event")``.

        An event name not in :attr:`EVENTS` is accepted (a pipeline may add
        events) but logged as a warning, since it is usually a typo.
        """
        if event not in self.EVENTS:
            logger.warning("no event {!r} is known to {}; is it misspelled?", event, type(self).__name__)
        return super().on(event, handler)

    @overload  # type: ignore[override]
    def emit(self, event: Literal["user_state_changed"], payload: UserStateChangedEvent, /) -> None: ...
    @overload
    def emit(self, event: Literal["agent_state_changed"], payload: AgentStateChangedEvent, /) -> None: ...
    @overload
    def emit(self, event: Literal["on_speech_in"], payload: SpeechInEvent, /) -> None: ...
    @overload
    def emit(self, event: Literal["on_speech_out"], payload: SpeechOutEvent, /) -> None: ...
    @overload
    def emit(self, event: Literal["on_wake_up"], payload: WakeUpEvent, /) -> None: ...
    @overload
    def emit(self, event: Literal["user_turn"], payload: UserTurnEvent, /) -> None: ...
    @overload
    def emit(self, event: Literal["agent_turn"], payload: AgentTurnEvent, /) -> None: ...
    @overload
    def emit(self, event: Literal["function_call"], payload: FunctionCallEvent, /) -> None: ...
    @overload
    def emit(self, event: Literal["agent_handoff"], payload: AgentHandoffEvent, /) -> None: ...
    @overload
    def emit(self, event: Literal["interruption"], payload: InterruptionEvent, /) -> None: ...
    @overload
    def emit(self, event: Literal["false_interruption"], payload: FalseInterruptionEvent, /) -> None: ...
    @overload
    def emit(self, event: Literal["backchannel"], payload: BackchannelEvent, /) -> None: ...
    @overload
    def emit(self, event: Literal["end_of_turn_probability"], payload: EndOfTurnProbabilityEvent, /) -> None: ...
    @overload
    def emit(self, event: Literal["preemptive_generation"], payload: PreemptiveGenerationEvent, /) -> None: ...
    @overload
    def emit(self, event: Literal["metrics_collected"], payload: MetricsCollectedEvent, /) -> None: ...
    @overload
    def emit(self, event: Literal["error"], payload: ErrorEvent, /) -> None: ...
    @overload
    def emit(self, event: Literal["close"], payload: CloseEvent, /) -> None: ...
    def emit(self, event: str, *args: Any) -> None:
        """Call every handler of ``event`` with the payload."""
        super().emit(event, *args)


def _name(handler: Handler) -> str:
    return getattr(handler, "__qualname__", repr(handler))
