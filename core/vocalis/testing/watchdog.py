"""Catch event-loop stalls: time every callback any asyncio loop runs.

A voice agent has a 20 ms audio frame budget: one callback that holds the
loop for half a second (a model loaded inline, a first-time import of a big
library inside a coroutine, a synchronous HTTP call) stalls every session of
the process. :class:`LoopWatchdog` makes such stalls visible in tests::

    with LoopWatchdog(threshold=0.2) as watchdog:
        run_virtual(main())
    watchdog.check()  # raises LoopBlocked naming the slow callback

While any watchdog is active, ``asyncio.Handle._run`` (which every event
loop, :class:`~vocalis.testing.VirtualTimeLoop` included, uses to run a
callback or one step of a task) is timed in real time. A helper thread
looks at the callbacks still running, so a stall also reports *where* the
loop was stuck: the stack of the loop's thread, sampled while it was
blocked.

Time the loop's thread spent *runnable but waiting for a CPU* (other
processes kept every core busy) is not blocking by the code under test, so
on Linux it is taken out: the kernel's per-thread run-queue delay
(``/proc/self/task/<tid>/schedstat``, one ``pread`` of a file kept open per
thread, ~3 µs) is read as each callback starts and, for a long one, again as
it ends; the difference is subtracted. A sleep, a blocking call or CPU-bound
work still counts in full, however loaded the machine is.
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import threading
import time
import traceback
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any

__all__ = ["LoopBlock", "LoopBlocked", "LoopWatchdog"]

_original_run = asyncio.events.Handle._run
_lock = threading.Lock()
_active: tuple[LoopWatchdog, ...] = ()
# Thread id -> [start, handle, sampled stack, run-queue ns at start] of the
# callback running on it now.
_running: dict[int, list[Any]] = {}
_sampler: _Sampler | None = None
# Native thread id -> open schedstat file of that thread (closed on stop).
_schedstat_fds: dict[int, int] = {}
_MAX_BLOCKS = 20
_MAX_FRAMES = 12
_EVENTS_FILE = os.path.join("asyncio", "events.py")


class LoopBlocked(AssertionError):
    """A callback held an event loop longer than the watchdog allows."""


@dataclass
class LoopBlock:
    """One callback that ran longer than the threshold.

    Attributes:
        seconds: How long it held the loop (real time, less the time its
            thread waited for a CPU).
        callback: What ran: the task (name and coroutine) or the handle's repr.
        thread: Name of the thread whose loop was blocked.
        stack: Where the loop's thread was while blocked (sampled; may be
            empty if the callback ended before the sampler looked).
    """

    seconds: float
    callback: str
    thread: str
    stack: list[str] = field(default_factory=list)
    starved: float = 0.0
    """Seconds the thread waited for a CPU meanwhile (not counted in ``seconds``)."""

    def describe(self) -> str:
        """A multi-line account for a test failure."""
        text = f"{self.seconds:.3f} s in {self.callback} (thread {self.thread})"
        if self.starved:
            text += f" (plus {self.starved:.3f} s waiting for a CPU, not counted)"
        if self.stack:
            text += "\n  blocked at (sampled):\n" + textwrap.indent("".join(self.stack), "    ")
        return text


def describe_handle(handle: asyncio.Handle) -> str:
    """A readable name for what a handle runs: the task and its coroutine, or the repr."""
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        coro = task.get_coro()
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        where = f" {code.co_qualname} ({code.co_filename}:{code.co_firstlineno})" if code else f" {coro!r}"
        return f"task {task.get_name()!r}:{where}"
    text = repr(handle)
    return text if len(text) <= 400 else text[:400] + "..."


class LoopWatchdog:
    """Record event-loop callbacks that run longer than ``threshold`` seconds.

    Use as a (re-entrant across instances) context manager; every event loop
    of the process is watched while it is active, in any thread. Time is
    real time, also under a virtual clock.

    Args:
        threshold: Seconds one callback may hold its loop.
        sample_stacks: Sample the blocked thread's stack to say where it was
            stuck (one helper thread while any watchdog is active).
    """

    def __init__(self, threshold: float = 0.5, *, sample_stacks: bool = True) -> None:
        if threshold <= 0:
            raise ValueError("threshold must be positive")
        self.threshold = threshold
        self.sample_stacks = sample_stacks
        self.longest = 0.0
        """The longest callback seen, in seconds (over threshold or not)."""
        self.blocks: list[LoopBlock] = []
        """Callbacks over the threshold, longest first (at most 20 kept)."""
        self.callbacks = 0
        """How many callbacks ran while watching."""

    # -- activation -------------------------------------------------------------
    def __enter__(self) -> LoopWatchdog:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start watching (what entering the context does)."""
        global _active, _sampler
        with _lock:
            if self in _active:
                return
            _active = (*_active, self)
            asyncio.events.Handle._run = _timed_run  # type: ignore[method-assign]
            if _sampler is None:
                _sampler = _Sampler()
                _sampler.start()

    def stop(self) -> None:
        """Stop watching. Idempotent."""
        global _active, _sampler
        with _lock:
            if self not in _active:
                return
            _active = tuple(w for w in _active if w is not self)
            sampler = None
            if not _active:
                asyncio.events.Handle._run = _original_run  # type: ignore[method-assign]
                _running.clear()
                for fd in _schedstat_fds.values():
                    os.close(fd)
                _schedstat_fds.clear()
            if not _active:
                sampler, _sampler = _sampler, None
        if sampler is not None:
            sampler.stop()

    # -- results ------------------------------------------------------------------
    @property
    def blocked(self) -> bool:
        """Whether any callback ran longer than the threshold."""
        return bool(self.blocks)

    def report(self) -> str:
        """Every recorded block, longest first."""
        if not self.blocks:
            return f"no callback held the loop longer than {self.threshold:g} s (longest {self.longest:.3f} s)"
        lines = [f"an event loop was blocked longer than {self.threshold:g} s:"]
        lines += [f"- {block.describe()}" for block in self.blocks]
        lines.append(
            "Move blocking work (model loading, CPU-bound inference, file or network I/O, first imports "
            "of big libraries) off the loop: asyncio.to_thread() or loop.run_in_executor()."
        )
        return "\n".join(lines)

    def check(self) -> None:
        """Raise :class:`LoopBlocked` if a callback ran longer than the threshold."""
        if self.blocks:
            raise LoopBlocked(self.report())

    def _record(self, seconds: float, handle: asyncio.Handle, stack: list[str] | None, starved: float = 0.0) -> None:
        self.callbacks += 1
        self.longest = max(self.longest, seconds)
        if seconds <= self.threshold:
            return
        try:
            what = describe_handle(handle)
        except Exception as exc:
            what = f"<unprintable handle: {type(exc).__name__}>"
        stack = stack if stack and self.sample_stacks else []
        block = LoopBlock(seconds, what, threading.current_thread().name, stack, starved)
        self.blocks.append(block)
        self.blocks.sort(key=lambda b: -b.seconds)
        del self.blocks[_MAX_BLOCKS:]


def _timed_run(self: asyncio.Handle) -> None:
    watchers = _active
    if not watchers:
        _original_run(self)
        return
    ident = threading.get_ident()
    outer = _running.get(ident)  # a loop run inside a callback (nested loops)
    entry: list[Any] = [time.perf_counter(), self, None, _runqueue_ns()]
    _running[ident] = entry
    try:
        _original_run(self)
    finally:
        end = time.perf_counter()
        elapsed = end - entry[0]
        if outer is None:
            _running.pop(ident, None)
        else:
            _running[ident] = outer
        starved = 0.0
        if elapsed > min(w.threshold for w in watchers) and entry[3] is not None:
            now_ns = _runqueue_ns()
            if now_ns is not None:
                starved = min(elapsed, max(0, now_ns - entry[3]) / 1e9)
                elapsed -= starved
        for watchdog in watchers:
            if elapsed > watchdog.longest or elapsed > watchdog.threshold:
                watchdog._record(elapsed, self, entry[2], starved)
            else:
                watchdog.callbacks += 1


def _runqueue_ns() -> int | None:
    """Nanoseconds this thread has spent runnable but waiting for a CPU
    (Linux schedstat), or None where that is not available."""
    native_id = threading.get_native_id()
    fd = _schedstat_fds.get(native_id)
    try:
        if fd is None:
            fd = os.open(f"/proc/self/task/{native_id}/schedstat", os.O_RDONLY)
            if not _active:  # stopped meanwhile: nobody would close it
                os.close(fd)
                return None
            _schedstat_fds[native_id] = fd
        return int(os.pread(fd, 64, 0).split()[1])
    except (OSError, ValueError, IndexError):
        # Not Linux, or the file belongs to a thread that has ended and whose
        # id was reused: forget it (a later callback opens a fresh one).
        stale = _schedstat_fds.pop(native_id, None)
        if stale is not None:
            os.close(stale)
        return None


def _callback_stack(frame: FrameType) -> list[str]:
    """The frames of ``frame``'s stack inside the running callback, innermost last."""
    summary = traceback.extract_stack(frame)
    # Everything up to asyncio's Handle._run is the loop machinery (and pytest).
    starts = [i for i, f in enumerate(summary) if f.name == "_run" and f.filename.endswith(_EVENTS_FILE)]
    frames = summary[starts[-1] + 1 :] if starts else list(summary)
    # Import machinery frames hide which module import is slow: drop them.
    summary = traceback.StackSummary.from_list([f for f in frames if not f.filename.startswith("<frozen ")])
    # The innermost frames say where it is stuck; keep those.
    return summary.format()[-_MAX_FRAMES:]


class _Sampler(threading.Thread):
    """Samples the stack of every thread whose loop is stuck in one callback."""

    def __init__(self) -> None:
        super().__init__(name="vocalis-loop-watchdog", daemon=True)
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()
        if self is not threading.current_thread():
            self.join()

    def run(self) -> None:
        while not self._stop_event.wait(self._period()):
            # One pass in a function of its own: its locals (the last entry
            # looked at, which reaches a callback and its session) are gone
            # between passes, so a closed session is never kept alive here.
            self._sample_once()

    @staticmethod
    def _sample_once() -> None:
        watchers = _active
        if not watchers:
            return
        threshold = min(w.threshold for w in watchers)
        if not any(w.sample_stacks for w in watchers):
            return
        now = time.perf_counter()
        for ident, entry in list(_running.items()):
            if entry[2] is None and now - entry[0] > threshold:
                frame = sys._current_frames().get(ident)
                if frame is not None:
                    stack = _callback_stack(frame)
                    if _running.get(ident) is entry:  # still the same callback
                        entry[2] = stack
                del frame

    @staticmethod
    def _period() -> float:
        watchers = _active
        threshold = min((w.threshold for w in watchers), default=0.5)
        return max(0.01, min(0.1, threshold / 4))
