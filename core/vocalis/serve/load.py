"""How loaded a serving process is: event-loop lag, CPU, sessions.

One :class:`LoadMonitor` per serving process samples two things on one
timer: how late the event loop wakes up (lag: every session of the process
feels it) and how much CPU the process used over the last few seconds (as
LiveKit's workers do, averaged over 2.5 s). ``/readyz`` and admission ask
the server's readiness, built on these figures, whether a new session may come in.

The load figure is pluggable: ``ServeOptions.load_function`` returns a
number where 1.0 means "full"; the default is the process's CPU share.
Sessions are counted separately, against ``max_sessions``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from dataclasses import dataclass

CPU_WINDOW = 2.5
"""Seconds the CPU figure is averaged over."""
_PERIOD = 0.25  # seconds between samples: 10 per CPU window


@dataclass(frozen=True)
class Verdict:
    """Whether a process takes new sessions, and if not why and when to retry.

    Attributes:
        ready: True when a new session is welcome.
        reason: Why not (``"draining"``, ``"full"``, ``"overloaded"``, ``"lagging"``), or ``""``.
        retry_after: Seconds a client or balancer should wait before asking again.
    """

    ready: bool
    reason: str = ""
    retry_after: int = 0


def cpu_share(workers: int) -> float:
    """The CPU cores one of ``workers`` processes may call its own."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1.0, cores / max(1, workers))


class LoadMonitor:
    """Samples the event loop's lag and the process's CPU use.

    Args:
        share: CPU cores this process may use (``cpu_share(workers)``); the
            CPU load is CPU seconds per second divided by it.
    """

    def __init__(self, share: float = 1.0) -> None:
        self.share = share
        self.loop_lag = 0.0
        """The worst lag of the last samples, in seconds."""
        self.cpu = 0.0
        """CPU use over the last :data:`CPU_WINDOW` seconds, as a share of ``share`` (0..1+)."""
        self._lags: deque[float] = deque(maxlen=int(CPU_WINDOW / _PERIOD))
        self._cpu_samples: deque[tuple[float, float]] = deque(maxlen=int(CPU_WINDOW / _PERIOD) + 1)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sampling on the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._sample())

    async def aclose(self) -> None:
        """Stop sampling. Idempotent."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    def sample_cpu(self) -> None:
        """Take one CPU sample now (the timer does this; tests may too)."""
        self._cpu_samples.append((time.monotonic(), time.process_time()))
        if len(self._cpu_samples) >= 2:
            (wall0, cpu0), (wall1, cpu1) = self._cpu_samples[0], self._cpu_samples[-1]
            if wall1 > wall0:
                self.cpu = (cpu1 - cpu0) / (wall1 - wall0) / self.share

    def record_lag(self, lag: float) -> None:
        """Record one measured wake-up delay."""
        self._lags.append(max(0.0, lag))
        self.loop_lag = max(self._lags)

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + _PERIOD
            await asyncio.sleep(_PERIOD)
            self.record_lag(loop.time() - expected)
            self.sample_cpu()
