"""The rate limiter of peer-triggered reports, on a clock the test moves by hand."""

from __future__ import annotations

import pytest
from ws_harness import captured_logs

from vocalis_websocket.throttle import Throttle, ThrottledLog, Verdict


class ManualClock:
    """Time that passes only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_per_interval_then_one_count_of_the_rest() -> None:
    clock = ManualClock()
    throttle = Throttle(burst=3, interval=10.0, clock=clock)
    assert [throttle.hit() for _ in range(3)] == [Verdict(True, 0)] * 3
    assert [throttle.hit() for _ in range(50)] == [Verdict(False, 0)] * 50
    clock.now += 9.99  # still the same window: still held back, nothing announced yet
    assert throttle.hit() == Verdict(False, 0)
    clock.now += 0.01  # a new window: the 51 held back are announced once, with a report in full
    assert throttle.hit() == Verdict(True, 51)
    assert [throttle.hit() for _ in range(2)] == [Verdict(True, 0)] * 2
    assert throttle.hit() == Verdict(False, 0)
    assert throttle.total == 3 + 50 + 1 + 1 + 2 + 1
    assert throttle.flush() == 1
    assert throttle.flush() == 0


def test_a_quiet_peer_is_never_counted_as_a_flood() -> None:
    clock = ManualClock()
    throttle = Throttle(burst=1, interval=5.0, clock=clock)
    for _ in range(20):  # one occurrence per window: every one reported, nothing held back
        assert throttle.hit() == Verdict(True, 0)
        clock.now += 5.0
    assert throttle.flush() == 0


def test_a_window_starts_with_the_first_occurrence_after_the_last_one_ended() -> None:
    clock = ManualClock()
    throttle = Throttle(burst=1, interval=10.0, clock=clock)
    assert throttle.hit().report
    clock.now += 3.0
    assert not throttle.hit().report
    clock.now += 100.0  # long quiet: the count of the old window comes with the next occurrence
    assert throttle.hit() == Verdict(True, 1)
    clock.now += 9.0  # 9 s into the window that began 100 s later, not a fresh window
    assert throttle.hit() == Verdict(False, 0)


def test_burst_zero_reports_only_counts() -> None:
    clock = ManualClock()
    throttle = Throttle(burst=0, interval=1.0, clock=clock)
    assert [throttle.hit() for _ in range(4)] == [Verdict(False, 0)] * 4
    clock.now += 1.0
    assert throttle.hit() == Verdict(False, 4)


@pytest.mark.parametrize(("burst", "interval"), [(-1, 1.0), (1, 0.0), (1, -2.0)])
def test_nonsense_limits_are_refused(burst: int, interval: float) -> None:
    with pytest.raises(ValueError, match="burst"):
        Throttle(burst, interval)


def test_the_log_writes_at_most_a_burst_and_one_summary_per_interval() -> None:
    clock = ManualClock()
    log = ThrottledLog("twilio", "failed connections", burst=2, interval=10.0, clock=clock)
    with captured_logs() as lines:
        logged = [log.log(f"connection failed: attempt {i}") for i in range(1000)]
        clock.now += 10.0
        log.log("refused (1013): full", "INFO")
        log.log("connection failed: again")
        log.log("connection failed: and again")
        log.flush()
        log.flush()
    assert logged == [True, True] + [False] * 998
    assert lines == [
        "WARNING twilio: connection failed: attempt 0",
        "WARNING twilio: connection failed: attempt 1",
        "WARNING twilio: 998 more failed connections suppressed",
        "INFO twilio: refused (1013): full",
        "WARNING twilio: connection failed: again",
        "WARNING twilio: 1 more failed connections suppressed",
    ]
