"""A virtual-time asyncio event loop for fast, deterministic conversations.

Tests run scripted conversations on it (``vocalis.testing`` re-exports it), and
``vocalis talk --fast`` / ``--text`` run real models on it (``real_time_io``): the
input is paced as if live and model work takes its real time, but nobody waits
through silence or playback.

A conversation that spans a minute of timeline (audio frames every 20 ms, endpointing
silences, LLM timeouts) runs in milliseconds: whenever the loop has nothing to run and no
real I/O is ready, the clock jumps straight to the next timer instead of sleeping.

Real work is still real. Loopback sockets are polled on every iteration, and while an
executor job (``run_in_executor``, ``asyncio.to_thread``) is in flight the clock stands
still and the loop waits in real time, so a thread that needs 50 ms cannot be "timed out"
by a 10 s virtual deadline.

Caveats:
    * I/O from peers outside the loop (other processes, hand-made threads) is not awaited:
      if a timer is pending, the clock jumps to it before such a peer answers.
    * With no timers and no executor jobs, the loop does a real blocking wait in 50 ms
      slices, as a real loop would block. When not even a socket is open, only another
      thread could wake it: after ``deadlock_timeout`` (5 s) of that it raises
      :class:`VirtualTimeDeadlock` instead of hanging. ``max_virtual_time`` catches
      timer-driven runaways.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import inspect
import itertools
import selectors
import time
from collections.abc import Callable, Coroutine, Mapping
from contextvars import Context
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

__all__ = [
    "VirtualTimeDeadlock",
    "VirtualTimeLimitExceeded",
    "VirtualTimeLoop",
    "run_virtual",
    "virtual_time",
]

T = TypeVar("T")

# Upper bound on one real wait, so the loop re-checks its state even if a wake-up is missed.
_REAL_WAIT_CAP = 0.05


class VirtualTimeLimitExceeded(RuntimeError):
    """Virtual time would pass the loop's ``max_virtual_time`` (likely a runaway loop)."""


class VirtualTimeDeadlock(RuntimeError):
    """Every task waits and nothing (timer, I/O, thread) can wake any of them."""


class _OrderedTimerHandle(asyncio.TimerHandle):
    # asyncio orders its timer heap by deadline only and heapq is not stable. Under virtual
    # time equal deadlines are the norm, so break ties by scheduling order (FIFO).
    __slots__ = ("_seq",)

    def __init__(
        self,
        seq: int,
        when: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop,
        context: Context | None,
    ) -> None:
        super().__init__(when, callback, args, loop, context)
        self._seq = seq

    def __lt__(self, other: asyncio.TimerHandle) -> bool:
        if isinstance(other, _OrderedTimerHandle) and self.when() == other.when():
            return self._seq < other._seq
        return super().__lt__(other)


class _VirtualSelector(selectors.BaseSelector):
    """Polls real I/O without blocking and turns the loop's idle sleeps into clock jumps."""

    def __init__(self, real: selectors.BaseSelector, loop: VirtualTimeLoop) -> None:
        self._real = real
        self._loop = loop

    def register(self, fileobj: FileDescriptorLike, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: FileDescriptorLike, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_key(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        # ``timeout`` is the loop's wish: 0 = work is ready, N = next timer in N virtual
        # seconds, None = no timers at all.
        ready = self._real.select(0)
        if ready or (timeout is not None and timeout <= 0):
            return ready
        if timeout is not None and not self._loop._real_work:
            if self._loop.real_time_io and len(self._real.get_map()) > 1:
                # A socket or pipe is open: a peer (a server, a subprocess) may
                # be working on an answer, so the clock keeps real time until
                # the next timer instead of jumping past its deadline.
                started = time.perf_counter()
                ready = self._real.select(min(timeout, _REAL_WAIT_CAP))
                self._loop._jump(min(timeout, time.perf_counter() - started))
                return ready
            self._loop._jump(timeout)
            return []
        # Only something real (a thread, a signal, an outside peer) can make progress now.
        started = time.perf_counter()
        ready = self._real.select(_REAL_WAIT_CAP)
        if self._loop.real_time_io and self._loop._real_work:
            # Real work takes real time: a model that needs 0.4 s makes 0.4 s
            # pass, so what overlaps it (speech going on) does as in real time.
            elapsed = time.perf_counter() - started
            self._loop._jump(elapsed if timeout is None else min(elapsed, timeout))
        if ready or self._loop._real_work or len(self._real.get_map()) > 1:
            self._loop._idle_real = 0.0
        elif timeout is None:
            # No timer, no thread, no socket but the loop's own wake-up pipe:
            # only another thread could still wake us. Waiting long for that
            # is a deadlock in a test; say so instead of hanging.
            self._loop._idle_real += _REAL_WAIT_CAP
            if self._loop._idle_real >= self._loop.deadlock_timeout:
                raise VirtualTimeDeadlock(
                    f"nothing can wake the loop (no timers, no I/O, no executor work) "
                    f"for {self._loop.deadlock_timeout:g} s of real time: every task is "
                    "waiting on something that never happens"
                )
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """Selector event loop whose clock is virtual.

    ``loop.time()`` starts at ``start`` and only moves when the loop would otherwise sleep:
    it then jumps to the next scheduled timer. Timers with equal deadlines fire in the order
    they were scheduled, so runs are reproducible.

    Args:
        start: Initial value of ``loop.time()``, in virtual seconds.
        max_virtual_time: Virtual time the clock may never pass; reaching past it raises
            :class:`VirtualTimeLimitExceeded` out of the running loop. ``None`` disables it.
        real_time_io: Let time pass in real time while real work is in
            flight: executor jobs (models running in threads) take their real
            duration on the clock, and while any socket or pipe is open
            (besides the loop's own wake-up pipe) the clock does not jump, so
            an outside peer (a network API, an MCP server process) has the
            real seconds its timeouts promise. Only waiting is skipped. Off
            for tests, whose providers are fakes; on for ``vocalis talk
            --fast`` with real providers.
    """

    def __init__(
        self, start: float = 0.0, *, max_virtual_time: float | None = 3600.0, real_time_io: bool = False
    ) -> None:
        if max_virtual_time is not None and max_virtual_time < start:
            raise ValueError(f"max_virtual_time={max_virtual_time} is before start={start}")
        self._now = float(start)
        self._max_virtual_time = max_virtual_time
        self._real_work = 0  # executor jobs (and executor shutdowns) still running for real
        self._idle_real = 0.0
        self.deadlock_timeout = 5.0
        """Real seconds with nothing able to wake the loop before it raises."""
        self._timer_seq = itertools.count()
        self.real_time_io = real_time_io
        super().__init__(_VirtualSelector(selectors.DefaultSelector(), self))

    def time(self) -> float:
        """Return the current virtual time in seconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by hand; timers now due fire on the next iteration.

        Args:
            seconds: How far to move the clock; must not be negative.

        Raises:
            ValueError: If ``seconds`` is negative.
            VirtualTimeLimitExceeded: If the clock would pass ``max_virtual_time``.
        """
        if seconds < 0:
            raise ValueError("virtual time cannot go backwards")
        self._set_time(self._now + seconds)

    def _jump(self, delay: float) -> None:
        # The loop passes (deadline - now), and now + (deadline - now) rounds back to the
        # deadline exactly, so timers observe loop.time() == their deadline.
        self._set_time(self._now + delay)

    def _set_time(self, target: float) -> None:
        limit = self._max_virtual_time
        if limit is not None and target > limit:
            raise VirtualTimeLimitExceeded(
                f"virtual time would reach {target:g}s, past max_virtual_time={limit:g}s; "
                "is a task looping on a timer forever?"
            )
        self._now = target

    def call_at(  # type: ignore[override]  # the base is generic over the callback's arguments
        self, when: float, callback: Callable[..., object], *args: Any, context: Context | None = None
    ) -> asyncio.TimerHandle:
        """Schedule ``callback`` at virtual time ``when`` (FIFO among equal deadlines)."""
        # Mirrors BaseEventLoop.call_at (3.11-3.13) with a tie-breaking handle type.
        if when is None:
            raise TypeError("when cannot be None")
        self._check_closed()  # type: ignore[attr-defined]
        if self.get_debug():
            self._check_thread()  # type: ignore[attr-defined]
            self._check_callback(callback, "call_at")  # type: ignore[attr-defined]
        timer = _OrderedTimerHandle(next(self._timer_seq), when, callback, args, self, context)
        if timer._source_traceback:  # type: ignore[attr-defined]
            del timer._source_traceback[-1]  # type: ignore[attr-defined]
        heapq.heappush(self._scheduled, timer)  # type: ignore[attr-defined]
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    def run_in_executor(  # type: ignore[override]  # the base is generic over func's arguments
        self, executor: concurrent.futures.Executor | None, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        """Run ``func`` in real time; the clock stands still until it finishes."""
        future = super().run_in_executor(executor, func, *args)
        self._real_work += 1
        future.add_done_callback(self._real_work_done)
        return future

    def _real_work_done(self, _: asyncio.Future[Any]) -> None:
        self._real_work -= 1

    async def shutdown_default_executor(self, *args: Any, **kwargs: Any) -> None:
        """Join the default executor's threads without letting the clock jump meanwhile."""
        # Python 3.12+ bounds this join with a loop-time timeout that a jump would fire at once.
        self._real_work += 1
        try:
            await super().shutdown_default_executor(*args, **kwargs)
        finally:
            self._real_work -= 1


def run_virtual(
    main: Coroutine[Any, Any, T],
    *,
    start: float = 0.0,
    max_virtual_time: float | None = 3600.0,
    debug: bool = False,
    real_time_io: bool = False,
) -> T:
    """Run ``main`` to completion on a fresh :class:`VirtualTimeLoop`, like ``asyncio.run``.

    The loop is the current event loop while it runs. Afterwards leftover tasks are
    cancelled, async generators and the default executor are shut down, the loop is closed
    and whatever loop was current before is current again.

    Args:
        main: The coroutine to run.
        start: Initial virtual time.
        max_virtual_time: Virtual time the run may not pass (``None``: no limit).
        debug: Run the loop in asyncio debug mode.
        real_time_io: See :class:`VirtualTimeLoop`.

    Returns:
        Whatever ``main`` returns; its exceptions propagate.

    Raises:
        VirtualTimeLimitExceeded: If virtual time would pass ``max_virtual_time``.
        RuntimeError: If called while an event loop is running in this thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        _close_unstarted(main)
        raise RuntimeError("run_virtual() cannot be called from a running event loop")
    policy = asyncio.get_event_loop_policy()
    # The policy has no side-effect-free getter (get_event_loop() may create a loop or warn),
    # so snapshot the default policy's thread-local slot to put it back exactly.
    local = getattr(policy, "_local", None)
    previous = getattr(local, "_loop", None)
    set_called = getattr(local, "_set_called", None)
    factory = partial(VirtualTimeLoop, start, max_virtual_time=max_virtual_time, real_time_io=real_time_io)
    runner = asyncio.Runner(debug=debug, loop_factory=factory)
    try:
        policy.set_event_loop(runner.get_loop())
        return runner.run(main)
    finally:
        try:
            runner.close()
        finally:
            policy.set_event_loop(previous)
            if set_called is not None and local is not None:
                local._set_called = set_called
            _close_unstarted(main)


def _close_unstarted(main: object) -> None:
    # A coroutine that never got to start would otherwise warn "was never awaited".
    if inspect.iscoroutine(main) and inspect.getcoroutinestate(main) == inspect.CORO_CREATED:
        main.close()


def virtual_time(func: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """Decorate an ``async def`` test so it runs under :func:`run_virtual`.

    The wrapper is a plain function, so pytest (with or without
    pytest-asyncio) calls it like any sync test; fixtures still work::

        @virtual_time
        async def test_greeting(tmp_path):
            ...
    """
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        return run_virtual(func(*args, **kwargs))

    # pytest reads the signature for fixtures; it must not see a coroutine function.
    wrapper.__signature__ = inspect.signature(func)  # type: ignore[attr-defined]
    return wrapper
