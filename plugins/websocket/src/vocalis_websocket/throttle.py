"""Rate limits for reports a remote peer can trigger at will.

A client that sends garbage, or a burst of connections that all fail the
same way (a peer resetting, the process out of file descriptors), must not
be able to flood the log or the client's own event stream. A
:class:`Throttle` lets the first ``burst`` occurrences of each ``interval``
through and counts the rest; the count is announced once, with the first
occurrence of a later interval (or by :meth:`Throttle.flush` at the end),
so at most ``burst + 1`` lines come out per interval however fast the peer
is. :class:`ThrottledLog` is the same for log lines.

The clock is injectable so tests advance time by hand instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

from loguru import logger

Clock = Callable[[], float]
"""Seconds from any fixed origin (``time.monotonic`` by default)."""


class Verdict(NamedTuple):
    """What to do with one occurrence.

    Attributes:
        report: Report this occurrence in full.
        suppressed: Earlier occurrences that were not reported; announce
            them now (0: nothing to announce).
    """

    report: bool
    suppressed: int


class Throttle:
    """``burst`` reports per ``interval`` seconds; the rest are counted.

    Args:
        burst: Occurrences reported in full per interval (0 reports none,
            only the counts).
        interval: Length of a window in seconds; a window starts with the
            first occurrence after the previous one ended.
        clock: The time source.

    Attributes:
        total: Occurrences seen.
    """

    def __init__(self, burst: int = 5, interval: float = 10.0, *, clock: Clock = time.monotonic) -> None:
        if burst < 0 or interval <= 0:
            raise ValueError("burst must be >= 0 and interval > 0")
        self.burst = burst
        self.interval = interval
        self._clock = clock
        self._window_start: float | None = None
        self._in_window = 0
        self._suppressed = 0
        self.total = 0

    def hit(self) -> Verdict:
        """Count one occurrence and say whether to report it."""
        now = self._clock()
        announce = 0
        if self._window_start is None or now - self._window_start >= self.interval:
            # A new window: what the last one held back is announced now, once.
            announce, self._suppressed = self._suppressed, 0
            self._window_start = now
            self._in_window = 0
        self.total += 1
        self._in_window += 1
        if self._in_window <= self.burst:
            return Verdict(True, announce)
        self._suppressed += 1
        return Verdict(False, announce)

    def flush(self) -> int:
        """Occurrences held back and not announced yet (the count restarts at 0)."""
        count, self._suppressed = self._suppressed, 0
        return count


class ThrottledLog:
    """Warnings about one kind of trouble, at most ``burst + 1`` lines per interval.

    Args:
        label: Prefix of every line (the endpoint or connection).
        what: Plural noun for the summary line ("failed connections").
        burst: Lines in full per interval.
        interval: Seconds per window.
        clock: The time source.
    """

    def __init__(
        self, label: str, what: str, burst: int = 5, interval: float = 10.0, *, clock: Clock = time.monotonic
    ) -> None:
        self.label = label
        self.what = what
        self.throttle = Throttle(burst, interval, clock=clock)

    def log(self, text: str, level: str = "WARNING") -> bool:
        """Log ``text`` at ``level`` unless the limit is reached; True when it was logged."""
        verdict = self.throttle.hit()
        if verdict.suppressed:
            self.summary(verdict.suppressed)
        if verdict.report:
            logger.log(level, "{}: {}", self.label, text)
        return verdict.report

    def summary(self, count: int) -> None:
        """Log that ``count`` lines were suppressed."""
        logger.warning("{}: {} more {} suppressed", self.label, count, self.what)

    def flush(self) -> None:
        """Log the count of suppressed lines not announced yet, if any."""
        count = self.throttle.flush()
        if count:
            self.summary(count)
