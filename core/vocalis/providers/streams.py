"""The channel every provider stream is built on.

Input is pushed synchronously (``push_frame``/``push_text``) so the per-frame
path costs one method call; output events are read with ``async for``.
Providers that do their work in a background task start it with
:meth:`ProviderStream.start_task`: an exception there ends iteration with that
exception, labelled with the provider.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

from vocalis.providers.base import as_provider_error

E = TypeVar("E")

_END = object()


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class ProviderStream(Generic[E]):
    """An async iterator of provider events with push-style input.

    Args:
        label: The provider's label, used to name failures.
    """

    def __init__(self, label: str = "") -> None:
        self.label = label
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._room: asyncio.Event | None = None  # set by the reader, for wait_for_room
        self._task: asyncio.Task[None] | None = None
        self._input_ended = False
        self._finished = False
        self._closed = False

    # -- for provider implementations ---------------------------------
    def start_task(self, coro: Coroutine[object, object, None]) -> None:
        """Run the provider's worker; its end ends the stream."""
        self._task = asyncio.get_running_loop().create_task(coro)
        self._task.add_done_callback(self._worker_done)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            self._finish()
        elif (exc := task.exception()) is not None:
            self.fail(exc)
        else:
            self._finish()

    def send(self, event: E) -> None:
        """Deliver one event to the reader."""
        if not self._finished:
            self._queue.put_nowait(event)

    async def wait_for_room(self, limit: int) -> None:
        """Wait while ``limit`` or more events wait for the reader.

        Workers that produce faster than the reader consumes (a TTS faster
        than real time) call this before :meth:`send`, so what they made
        but nobody read yet stays bounded. Returns at once once the stream
        is closed.
        """
        while self._queue.qsize() >= limit and not self._closed and not self._finished:
            if self._room is None:
                self._room = asyncio.Event()
            self._room.clear()
            await self._room.wait()

    def fail(self, exc: BaseException) -> None:
        """End the stream with an error the reader will see."""
        if self._finished:
            return
        self._finished = True
        self._queue.put_nowait(_Failure(as_provider_error(self.label, exc)))

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            self._queue.put_nowait(_END)

    # -- for readers ---------------------------------------------------
    @property
    def input_ended(self) -> bool:
        """Whether :meth:`end_input` was called."""
        return self._input_ended

    def end_input(self) -> None:
        """No more input will come; the stream ends when the work is done."""
        self._input_ended = True
        if self._task is None:
            self._finish()
        else:
            self._on_end_input()

    def _on_end_input(self) -> None:
        """Hook for implementations with a worker (wake it so it can finish)."""

    def __aiter__(self) -> ProviderStream[E]:
        return self

    async def __anext__(self) -> E:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if self._room is not None:
            self._room.set()
        if item is _END:
            self._queue.put_nowait(_END)  # later readers also see the end
            raise StopAsyncIteration
        if isinstance(item, _Failure):
            self._queue.put_nowait(_END)
            raise item.exc
        return item  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Stop the worker and end the stream. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._input_ended = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            # asyncio.wait neither raises the worker's error nor swallows a
            # cancellation of the caller.
            await asyncio.wait([task])
        self._finish()
