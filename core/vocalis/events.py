"""Per-object event emitters.

Each session owns its emitter; there is no process-wide bus, so sessions in
one process never see each other's events.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from loguru import logger

Handler = Callable[..., Any]
H = TypeVar("H", bound=Handler)


class EventEmitter:
    """Register handlers by event name and emit payloads to them.

    Handlers may be plain functions or coroutine functions. Coroutine
    handlers run as tasks that the emitter tracks, so their owner can wait
    for or cancel them on close. A handler that raises is logged and does not
    stop the other handlers or the emitter's owner.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self._any: list[Callable[[str, tuple[Any, ...]], Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def on_any(self, handler: Callable[[str, tuple[Any, ...]], Any]) -> None:
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


def _name(handler: Handler) -> str:
    return getattr(handler, "__qualname__", repr(handler))
