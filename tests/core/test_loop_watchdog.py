"""The event-loop watchdog: LoopWatchdog and the pytest plugin every test here runs under."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vocalis.testing import LoopBlocked, LoopWatchdog, run_virtual


async def hold_the_loop(seconds: float) -> None:
    await asyncio.sleep(0)
    time.sleep(seconds)


@pytest.mark.loop_block_ok(1.0, reason="blocks on purpose, under a stricter inner watchdog")
def test_a_blocking_coroutine_is_named_with_where_it_was_stuck() -> None:
    with LoopWatchdog(threshold=0.1) as watchdog:
        asyncio.run(hold_the_loop(0.4))
    assert watchdog.blocked and watchdog.longest >= 0.4
    block = watchdog.blocks[0]
    assert "hold_the_loop" in block.callback and "test_loop_watchdog.py" in block.callback
    assert any("time.sleep(seconds)" in line for line in block.stack), block.stack
    with pytest.raises(LoopBlocked, match="hold_the_loop") as info:
        watchdog.check()
    assert "asyncio.to_thread" in str(info.value)


@pytest.mark.loop_block_ok(1.0, reason="blocks on purpose, under a stricter inner watchdog")
def test_virtual_time_loops_are_watched_in_real_time() -> None:
    async def main() -> None:
        await asyncio.sleep(30)  # virtual: no real time passes
        await hold_the_loop(0.3)

    started = time.perf_counter()
    with LoopWatchdog(threshold=0.1) as watchdog:
        run_virtual(main())
    assert time.perf_counter() - started < 10
    assert [b.seconds >= 0.3 for b in watchdog.blocks] == [True]
    assert "main" in watchdog.blocks[0].callback
    assert any("hold_the_loop" in line for line in watchdog.blocks[0].stack)


def test_executor_work_and_plain_callbacks_are_fine() -> None:
    async def main() -> None:
        await asyncio.to_thread(time.sleep, 0.3)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.call_later(0.01, done.set_result, None)
        await done

    with LoopWatchdog(threshold=0.1) as watchdog:
        asyncio.run(main())
        run_virtual(main())
    watchdog.check()
    assert not watchdog.blocked and watchdog.callbacks > 4 and watchdog.longest < 0.1
    assert "no callback held the loop" in watchdog.report()


@pytest.mark.loop_block_ok(1.0, reason="blocks on purpose, under a stricter inner watchdog")
def test_stopping_restores_asyncio_and_watchdogs_nest() -> None:
    from vocalis.testing import watchdog as module

    original = asyncio.events.Handle._run  # timed already if this suite runs the plugin
    outer = LoopWatchdog(threshold=5.0)
    with outer:
        with LoopWatchdog(threshold=0.05, sample_stacks=False) as inner:
            asyncio.run(hold_the_loop(0.1))
        assert inner.blocked and not inner.blocks[0].stack
        assert asyncio.events.Handle._run is module._timed_run  # the outer one still watches
    assert asyncio.events.Handle._run is original
    if not module._active:
        assert original is module._original_run
    assert outer.callbacks >= inner.callbacks and not outer.blocked
    outer.stop()  # idempotent
    with pytest.raises(ValueError):
        LoopWatchdog(threshold=0)


INNER_TESTS = """
import asyncio
import time

import pytest
from vocalis.testing import run_virtual


async def test_blocks_in_pytest_asyncio():
    time.sleep(0.3)


def test_blocks_under_virtual_time():
    async def main():
        await asyncio.sleep(5)
        time.sleep(0.3)
    run_virtual(main())


@pytest.fixture
async def slow_teardown():
    yield
    time.sleep(0.3)


async def test_blocks_in_a_fixture_teardown(slow_teardown):
    pass


async def test_executor_is_fine():
    await asyncio.to_thread(time.sleep, 0.3)


def test_sync_code_without_a_loop_is_fine():
    time.sleep(0.3)


@pytest.mark.loop_block_ok(2.0, reason="documented exception")
async def test_marked_exception():
    time.sleep(0.3)


@pytest.mark.loop_block_ok
async def test_marked_unchecked():
    time.sleep(0.3)
"""


def run_inner(tmp_path: Path, *options: str) -> dict[str, str]:
    """Run INNER_TESTS in a fresh pytest with the plugin; the outcome of each test."""
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    report = tmp_path / "report.xml"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "vocalis.testing.pytest_plugin",
            "-p",
            "no:cacheprovider",
            "--strict-markers",
            f"--junitxml={report}",
            *options,
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        problems = [child for child in case if child.tag in ("failure", "error")]
        # A teardown error is a second <testcase> entry in some versions: keep the worst.
        text = "\n".join((p.get("message") or "") + (p.text or "") for p in problems)
        outcomes[case.get("name", "")] = (outcomes.get(case.get("name", ""), "") + text) or outcomes.get(
            case.get("name", ""), ""
        )
    assert outcomes, process.stdout + process.stderr
    return outcomes


def test_the_pytest_plugin_fails_tests_that_block_a_loop(tmp_path: Path) -> None:
    outcomes = run_inner(tmp_path, "--loop-block-threshold=0.15")
    failed = {name for name, text in outcomes.items() if text}
    assert failed == {
        "test_blocks_in_pytest_asyncio",
        "test_blocks_under_virtual_time",
        "test_blocks_in_a_fixture_teardown",
    }, outcomes
    assert "test_blocks_in_pytest_asyncio" in outcomes["test_blocks_in_pytest_asyncio"]
    assert "slow_teardown" in outcomes["test_blocks_in_a_fixture_teardown"]
    for text in (outcomes[name] for name in failed):
        assert "blocked longer than 0.15 s" in text and "loop_block_ok" in text

    off = run_inner(tmp_path, "--loop-block-threshold=0")
    assert not any(off.values()), off


async def spin_cpu(cpu_seconds: float) -> None:
    """Hold the loop for ``cpu_seconds`` of this thread's CPU time."""
    await asyncio.sleep(0)
    until = time.thread_time() + cpu_seconds
    while time.thread_time() < until:
        pass


CPU_STARVED = """
import asyncio, os, subprocess, sys, time
sys.path.insert(0, {tests!r})
from test_loop_watchdog import hold_the_loop, spin_cpu
from vocalis.testing import LoopWatchdog

busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range((os.cpu_count() or 2) * 3)]
try:
    time.sleep(0.3)
    with LoopWatchdog(threshold=0.25) as work:
        started = time.perf_counter()
        asyncio.run(spin_cpu(0.12))
        wall = time.perf_counter() - started
    with LoopWatchdog(threshold=0.25) as sleeper:
        asyncio.run(hold_the_loop(0.4))
finally:
    for proc in busy:
        proc.kill()
print("wall", round(wall, 3), "work", [round(b.seconds, 3) for b in work.blocks], round(work.longest, 3))
print("sleep", [(round(b.seconds, 3), round(b.starved, 3)) for b in sleeper.blocks])
assert wall > 0.25, f"the machine was not loaded enough to test anything: {{wall}} s"
assert not work.blocked, work.report()
assert sleeper.blocked and sleeper.blocks[0].seconds >= 0.35, sleeper.report()
print("OK")
"""


@pytest.mark.skipif(not Path("/proc/thread-self/schedstat").exists(), reason="needs Linux schedstat")
def test_waiting_for_a_cpu_is_not_blocking_but_sleeping_is() -> None:
    # In a child process with three busy siblings per core: its loop thread
    # is starved of CPU while it runs a short callback.
    code = CPU_STARVED.format(tests=str(Path(__file__).parent))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "OK" in result.stdout, result.stdout + result.stderr
