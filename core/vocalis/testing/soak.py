"""Soak test: thousands of scripted turns in one process, then look for leaks.

:func:`run_soak` plays a long-running worker on the fakes under virtual time:
sessions open, talk (the turns of :mod:`vocalis.testing.soak_script`: voice
turns through :class:`FakeVAD`/:class:`FakeSTT`, typed turns, tool calls, a
failing tool, a tool that times out, an LLM that fails mid-stream,
barge-ins, ``say``, background audio), close, and new sessions open again.
After a warm-up it measures what a leak would grow: resident memory, asyncio
tasks, threads, open file descriptors, and sessions still alive. ``bench/soak.py`` runs the full
10,000 turns; ``tests/core/test_soak.py`` a short version::

    from vocalis.testing.soak import run_soak

    result = run_soak(400, warmup=100)
    assert not result.problems(max_rss_growth_kb=2048)
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import threading
import time
import tracemalloc
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from loguru import logger

from vocalis.testing.clock import run_virtual
from vocalis.testing.conversation import Conversation
from vocalis.testing.soak_script import SESSION_LENGTHS, TURN_KINDS, SoakWorld, play_turn

__all__ = ["TURN_KINDS", "SoakResult", "process_fds", "process_rss_kb", "run_soak", "soak"]


def process_rss_kb() -> int:
    """Resident memory of this process now, in KB (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def process_fds() -> int:
    """Open file descriptors of this process (-1 where it cannot be told)."""
    for path in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(path))
        except OSError:
            continue
    return -1


@dataclass
class SoakResult:
    """What a soak run measured.

    Memory, thread and descriptor figures compare the end of the run with
    the end of the warm-up (after ``gc.collect()``), so one-time costs
    (imports, caches, the first session) do not count as growth.

    Attributes:
        turns: Scripted turns played (warm-up included).
        warmup_turns: Turns before the baseline was taken.
        sessions: Sessions opened and closed.
        kinds: Turns played per kind.
        agent_turns: ``agent_turn`` events seen.
        errors: ``error`` events seen (the failing tool, the timeout and the
            LLM failure produce them on purpose).
        interruptions: ``interruption`` events seen (the barge-ins).
        tool_calls: ``function_call`` events seen.
        wall_seconds: Real time the run took.
        virtual_seconds: Loop time the conversations spanned.
        rss_start_kb: RSS before the first turn.
        rss_baseline_kb: RSS after the warm-up.
        rss_end_kb: RSS after the last turn.
        rss_samples: ``(turns played, RSS KB)`` taken along the way.
        sessions_leaked: Closed sessions still in memory at the end (some
            reference keeps them alive).
        tasks_leaked: asyncio tasks alive after every session closed.
        leaked_task_names: Their names (for the report).
        threads_baseline: Threads after the warm-up.
        threads_end: Threads at the end.
        fds_baseline: Open descriptors after the warm-up.
        fds_end: Open descriptors at the end.
        top_allocations: With ``trace_memory``, the biggest allocation
            growths between the baseline and the end (tracemalloc lines).
        python_heap_growth_kb: With ``trace_memory``, memory allocated by
            Python and still in use at the end, minus the same after the
            warm-up (RSS also counts allocator slack and fragmentation).
    """

    turns: int
    warmup_turns: int
    sessions: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    agent_turns: int = 0
    errors: int = 0
    interruptions: int = 0
    tool_calls: int = 0
    wall_seconds: float = 0.0
    virtual_seconds: float = 0.0
    rss_start_kb: int = 0
    rss_baseline_kb: int = 0
    rss_end_kb: int = 0
    rss_samples: list[tuple[int, int]] = field(default_factory=list)
    sessions_leaked: int = 0
    tasks_leaked: int = 0
    leaked_task_names: list[str] = field(default_factory=list)
    threads_baseline: int = 0
    threads_end: int = 0
    fds_baseline: int = 0
    fds_end: int = 0
    top_allocations: list[str] = field(default_factory=list)
    python_heap_growth_kb: int | None = None

    @property
    def rss_growth_kb(self) -> int:
        """RSS at the end minus RSS after the warm-up."""
        return self.rss_end_kb - self.rss_baseline_kb

    @property
    def threads_leaked(self) -> int:
        """Threads at the end beyond the baseline."""
        return max(0, self.threads_end - self.threads_baseline)

    @property
    def fds_leaked(self) -> int:
        """Open descriptors at the end beyond the baseline."""
        return max(0, self.fds_end - self.fds_baseline)

    def problems(self, *, max_rss_growth_kb: int = 5 * 1024) -> list[str]:
        """What breaks the budget (an empty list when the run is clean).

        Args:
            max_rss_growth_kb: RSS growth allowed after the warm-up.
        """
        found: list[str] = []
        if self.rss_growth_kb >= max_rss_growth_kb:
            found.append(f"RSS grew {self.rss_growth_kb} KB after the warm-up (budget {max_rss_growth_kb} KB)")
        if self.sessions_leaked:
            found.append(f"{self.sessions_leaked} closed sessions are still in memory")
        if self.tasks_leaked:
            found.append(f"{self.tasks_leaked} asyncio tasks leaked: {', '.join(self.leaked_task_names[:10])}")
        if self.threads_leaked:
            found.append(f"{self.threads_leaked} threads leaked")
        if self.fds_leaked:
            found.append(f"{self.fds_leaked} file descriptors leaked")
        expected_agent_turns = self.turns - self.kinds.get("llm_error", 0)
        if self.agent_turns < expected_agent_turns:
            found.append(f"only {self.agent_turns} agent turns for {self.turns} scripted turns")
        return found

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, derived figures included."""
        data = asdict(self)
        data.update(
            rss_growth_kb=self.rss_growth_kb,
            threads_leaked=self.threads_leaked,
            fds_leaked=self.fds_leaked,
        )
        return data


async def soak(
    turns: int = 10_000,
    *,
    warmup: int | None = None,
    sample_every: int = 500,
    trace_memory: bool = False,
    progress: Callable[[int, int], None] | None = None,
    session_kwargs: dict[str, Any] | None = None,
    on_session: Callable[[Conversation], None] | None = None,
) -> SoakResult:
    """Play ``turns`` scripted turns on the running loop and measure.

    Use :func:`run_soak` unless you already run a virtual-time loop.

    Args:
        turns: Scripted turns in all.
        warmup: Turns before the baseline (default: a tenth, at least 50).
        sample_every: Take an RSS sample every this many turns.
        trace_memory: Diff tracemalloc snapshots (slow; for hunting leaks).
        progress: Called with ``(turns played, RSS KB)`` at each sample.
        session_kwargs: Extra :class:`~vocalis.session.AgentSession` arguments.
        on_session: Called with each new conversation before it starts (to
            add handlers, or to plant a leak and see it caught).
    """
    warmup = min(turns, warmup if warmup is not None else max(50, turns // 10))
    result = SoakResult(turns=turns, warmup_turns=warmup)
    loop = asyncio.get_running_loop()
    world = SoakWorld()
    me = asyncio.current_task()
    sessions: weakref.WeakSet[Any] = weakref.WeakSet()
    kinds = itertools.cycle(TURN_KINDS)
    lengths = itertools.cycle(SESSION_LENGTHS)
    gc.collect()
    result.rss_start_kb = process_rss_kb()
    started_wall, started_loop = time.perf_counter(), loop.time()
    snapshot: tracemalloc.Snapshot | None = None
    traced_baseline = 0
    played = 0

    def measure_baseline() -> None:
        nonlocal snapshot, traced_baseline
        gc.collect()
        result.rss_baseline_kb = process_rss_kb()
        result.threads_baseline = threading.active_count()
        result.fds_baseline = process_fds()
        if trace_memory:
            tracemalloc.start(10)
            snapshot = tracemalloc.take_snapshot()
            traced_baseline = tracemalloc.get_traced_memory()[0]

    if warmup == 0:
        measure_baseline()
    while played < turns:
        conv = world.new_conversation(**(session_kwargs or {}))
        sessions.add(conv.session)
        if on_session is not None:
            on_session(conv)
        counts = {"agent_turn": 0, "error": 0, "interruption": 0, "function_call": 0}

        def count(name: str, args: tuple[Any, ...], counts: dict[str, int] = counts) -> None:
            if name in counts:
                counts[name] += 1

        conv.session.on_any(count)
        async with conv:
            for _ in range(min(next(lengths), turns - played)):
                kind = next(kinds)
                await play_turn(kind, conv, world)
                result.kinds[kind] = result.kinds.get(kind, 0) + 1
                played += 1
                world.forget(conv)  # the driver keeps no history: a leak must be the library's
                if played == warmup:
                    await _settle()
                    measure_baseline()
                if played % sample_every == 0 or played == turns:
                    rss = process_rss_kb()
                    result.rss_samples.append((played, rss))
                    if progress is not None:
                        progress(played, rss)
        result.sessions += 1
        result.agent_turns += counts["agent_turn"]
        result.errors += counts["error"]
        result.interruptions += counts["interruption"]
        result.tool_calls += counts["function_call"]
        world.end_session()
    await _settle()
    result.wall_seconds = round(time.perf_counter() - started_wall, 3)
    result.virtual_seconds = round(loop.time() - started_loop, 3)
    leftover = [task for task in asyncio.all_tasks() if task is not me and not task.done()]
    result.tasks_leaked = len(leftover)
    result.leaked_task_names = sorted(task.get_name() for task in leftover)
    del conv, leftover
    gc.collect()
    result.sessions_leaked = len(sessions)
    result.rss_end_kb = process_rss_kb()
    result.threads_end = threading.active_count()
    result.fds_end = process_fds()
    if trace_memory and snapshot is not None:
        result.python_heap_growth_kb = (tracemalloc.get_traced_memory()[0] - traced_baseline) // 1024
        stats = tracemalloc.take_snapshot().compare_to(snapshot, "traceback")
        result.top_allocations = [_describe(stat) for stat in stats[:15]]
        tracemalloc.stop()
    return result


def _describe(stat: tracemalloc.StatisticDiff) -> str:
    newest_first = list(stat.traceback)[::-1][:6]
    frames = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in newest_first)
    return f"{stat.size_diff / 1024:+.1f} KB ({stat.count_diff:+d} blocks) at {frames}"


async def _settle() -> None:
    # Let callbacks scheduled by the last close (done-callbacks, cancellations) run.
    for _ in range(5):
        await asyncio.sleep(0)


def run_soak(
    turns: int = 10_000,
    *,
    warmup: int | None = None,
    sample_every: int = 500,
    trace_memory: bool = False,
    progress: Callable[[int, int], None] | None = None,
    session_kwargs: dict[str, Any] | None = None,
    on_session: Callable[[Conversation], None] | None = None,
    quiet: bool = True,
) -> SoakResult:
    """Run :func:`soak` on a fresh virtual-time loop (no limit on virtual time).

    Args:
        turns: Scripted turns in all.
        warmup: Turns before the baseline (default: a tenth, at least 50).
        sample_every: Take an RSS sample every this many turns.
        trace_memory: Diff tracemalloc snapshots (slow; for hunting leaks).
        progress: Called with ``(turns played, RSS KB)`` at each sample.
        session_kwargs: Extra :class:`~vocalis.session.AgentSession` arguments.
        on_session: Called with each new conversation before it starts.
        quiet: Silence Vocalis's own log lines meanwhile (thousands of turn
            lines and the errors the script provokes on purpose).

    Returns:
        The measurements; check them with :meth:`SoakResult.problems`.
    """
    if quiet:
        logger.disable("vocalis")
    try:
        return run_virtual(
            soak(
                turns,
                warmup=warmup,
                sample_every=sample_every,
                trace_memory=trace_memory,
                progress=progress,
                session_kwargs=session_kwargs,
                on_session=on_session,
            ),
            max_virtual_time=None,
        )
    finally:
        if quiet:
            logger.enable("vocalis")
