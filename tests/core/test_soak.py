"""The short soak: a few hundred scripted turns in one process leak nothing.

The full 10,000-turn run is ``python bench/soak.py`` (figures in
docs/reliability.md); this one keeps CI honest in a few seconds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vocalis.testing import Conversation
from vocalis.testing.soak import TURN_KINDS, run_soak

# A short run still sees allocator warm-up (arenas, free lists) after its own
# warm-up, so its RSS budget is looser per turn than the full run's 5 MB over
# 9,000 turns. Leaked sessions, tasks, threads and descriptors are counted
# exactly, not inferred from RSS.
SHORT_RUN_RSS_BUDGET_KB = 4 * 1024

# The soak stops the loop on purpose to measure: gc.collect() over every object of
# the process takes a while on a loaded CI machine.
pytestmark = pytest.mark.loop_block_ok(2.0, reason="gc.collect() before each memory reading")


def test_short_soak_leaks_no_tasks_threads_fds_or_sessions() -> None:
    result = run_soak(400, warmup=100)
    assert result.problems(max_rss_growth_kb=SHORT_RUN_RSS_BUDGET_KB) == []
    assert result.tasks_leaked == 0 and result.threads_leaked == 0 and result.fds_leaked == 0
    assert result.sessions_leaked == 0
    # Representative: every kind of turn ran, sessions churned, the failures happened.
    assert set(result.kinds) == set(TURN_KINDS) and sum(result.kinds.values()) == 400
    assert result.sessions >= 20
    assert result.interruptions >= result.kinds["barge_in"]
    assert result.tool_calls >= result.kinds["tool"] + result.kinds["tool_error"] + result.kinds["tool_timeout"]
    assert result.errors >= result.kinds["tool_error"] + result.kinds["tool_timeout"] + result.kinds["llm_error"]
    assert result.virtual_seconds > 400  # over a second of conversation per turn
    # The virtual clock skips the waiting: far less real time than the
    # conversations span (typically ~2 s; a loaded machine is slower, not wrong).
    assert result.wall_seconds < result.virtual_seconds / 4


def test_soak_reports_what_it_measured() -> None:
    result = run_soak(30, warmup=10, sample_every=10)
    data = result.to_dict()
    assert data["turns"] == 30 and data["warmup_turns"] == 10
    assert [turns for turns, _ in data["rss_samples"]] == [10, 20, 30]
    assert data["rss_growth_kb"] == data["rss_end_kb"] - data["rss_baseline_kb"]
    assert data["rss_baseline_kb"] > 0 and data["fds_baseline"] > 0


def test_a_planted_leak_is_caught() -> None:
    """The checks can fail: a task and a session kept alive are reported."""
    kept: list[Any] = []

    def leak(conv: Conversation) -> None:
        kept.append(conv)  # holds the session
        kept.append(asyncio.get_running_loop().create_task(asyncio.sleep(1e9), name="planted"))

    result = run_soak(20, warmup=5, on_session=leak)
    problems = result.problems()
    assert result.tasks_leaked >= 1 and "planted" in result.leaked_task_names
    assert result.sessions_leaked >= 1
    assert any("asyncio tasks leaked" in p for p in problems)
    assert any("sessions are still in memory" in p for p in problems)
