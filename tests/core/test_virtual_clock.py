"""Tests for the virtual-time event loop in ``vocalis.testing.clock``."""

from __future__ import annotations

import asyncio
import random
import time
import warnings

import pytest

from vocalis.testing.clock import VirtualTimeLimitExceeded, VirtualTimeLoop, run_virtual


def test_sixty_virtual_seconds_take_no_wall_time() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        before = loop.time()
        await asyncio.sleep(60)
        return before, loop.time()

    wall = time.perf_counter()
    before, after = run_virtual(main())
    assert time.perf_counter() - wall < 0.1
    assert before == 0.0
    assert after == 60.0


def test_many_small_steps_are_fast() -> None:
    # A minute of 20 ms audio frames, paced by absolute deadlines like a real transport.
    async def main() -> float:
        loop = asyncio.get_running_loop()
        for frame in range(1, 3001):
            await asyncio.sleep(frame * 0.02 - loop.time())
        return loop.time()

    wall = time.perf_counter()
    assert run_virtual(main()) == pytest.approx(60.0)
    assert time.perf_counter() - wall < 0.5


def _sleep_trace(seed: int) -> list[tuple[float, int]]:
    rng = random.Random(seed)
    delays = [rng.choice([0.5, 1.0, 1.5, 2.0, 7.25]) for _ in range(200)]
    woke: list[tuple[float, int]] = []

    async def sleeper(index: int) -> None:
        await asyncio.sleep(delays[index])
        woke.append((asyncio.get_running_loop().time(), index))

    async def main() -> None:
        await asyncio.gather(*(sleeper(i) for i in range(len(delays))))

    run_virtual(main())
    # Each sleeper wakes exactly at its deadline, ties broken by creation order.
    assert woke == sorted((delays[i], i) for i in range(len(delays)))
    return woke


def test_concurrent_sleeps_wake_in_deadline_order_deterministically() -> None:
    assert _sleep_trace(7) == _sleep_trace(7)


def test_call_later_and_call_at_follow_virtual_time() -> None:
    async def main() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        fired: list[tuple[str, float]] = []
        done = loop.create_future()
        loop.call_at(3.0, lambda: fired.append(("at", loop.time())))
        loop.call_later(1.5, lambda: fired.append(("later", loop.time())))
        loop.call_later(4.0, done.set_result, None)
        await done
        return fired

    assert run_virtual(main()) == [("later", 1.5), ("at", 3.0)]


def test_wait_for_and_timeout_fire_at_exact_virtual_time() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(100), timeout=2.5)
        first = loop.time()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await asyncio.Event().wait()
        return first, loop.time()

    first, second = run_virtual(main(), start=10.2)
    assert first == 10.2 + 2.5
    assert second == 10.2 + 2.5 + 0.1


def test_thread_work_does_not_trigger_pending_virtual_timeout() -> None:
    def blocking_work() -> str:
        time.sleep(0.05)  # real time, in a worker thread
        return "done"

    async def main() -> tuple[str, str, float]:
        loop = asyncio.get_running_loop()
        via_thread = await asyncio.wait_for(asyncio.to_thread(blocking_work), timeout=10)
        via_executor = await asyncio.wait_for(loop.run_in_executor(None, blocking_work), 10)
        return via_thread, via_executor, loop.time()

    wall = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # A tight limit also proves the executor shutdown (a 300 s loop-time timeout on
        # Python 3.12+) does not make the clock jump.
        via_thread, via_executor, now = run_virtual(main(), max_virtual_time=60)
    assert (via_thread, via_executor) == ("done", "done")
    assert now == 0.0  # the clock stood still while real work ran
    assert time.perf_counter() - wall >= 0.1
    assert [str(w.message) for w in caught] == []


def test_loopback_socket_round_trip() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    async def main() -> bytes:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"hello vocalis\n")
            await writer.drain()
            reply = await reader.readline()
            writer.close()
            await writer.wait_closed()
        return reply

    assert run_virtual(main()) == b"HELLO VOCALIS\n"


def test_runaway_timer_loop_hits_max_virtual_time() -> None:
    async def forever() -> None:
        while True:
            await asyncio.sleep(1)

    wall = time.perf_counter()
    with pytest.raises(VirtualTimeLimitExceeded, match="max_virtual_time=100"):
        run_virtual(forever(), max_virtual_time=100)
    assert issubclass(VirtualTimeLimitExceeded, RuntimeError)
    assert time.perf_counter() - wall < 0.5


def test_no_limit_allows_long_sleeps() -> None:
    async def main() -> float:
        await asyncio.sleep(100_000)
        return asyncio.get_running_loop().time()

    assert run_virtual(main(), max_virtual_time=None) == 100_000


def test_leftover_tasks_are_cancelled() -> None:
    events: list[str] = []

    async def background() -> None:
        try:
            await asyncio.sleep(1_000)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        finally:
            events.append("cleaned up")

    async def main() -> None:
        asyncio.get_running_loop().create_task(background())
        await asyncio.sleep(1)

    run_virtual(main())
    assert events == ["cancelled", "cleaned up"]


def test_returns_result_and_propagates_exceptions() -> None:
    async def ok() -> int:
        await asyncio.sleep(0.5)
        return 42

    async def boom() -> None:
        await asyncio.sleep(0.5)
        raise ValueError("boom")

    assert run_virtual(ok()) == 42
    with pytest.raises(ValueError, match="boom"):
        run_virtual(boom())


def test_start_offset_and_manual_advance() -> None:
    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        seen = [loop.time()]
        fired = asyncio.Event()
        loop.call_later(5, fired.set)
        loop.advance(10)  # jumps past the timer: it fires late, at the new time
        await fired.wait()
        seen.append(loop.time())
        await asyncio.sleep(2.5)
        seen.append(loop.time())
        with pytest.raises(ValueError):
            loop.advance(-1)
        return seen

    assert run_virtual(main(), start=1000.0) == [1000.0, 1010.0, 1012.5]


def test_loop_closed_and_previous_loop_restored() -> None:
    policy = asyncio.get_event_loop_policy()
    outer = asyncio.new_event_loop()
    asyncio.set_event_loop(outer)
    try:

        async def main() -> asyncio.AbstractEventLoop:
            loop = asyncio.get_running_loop()
            assert isinstance(loop, VirtualTimeLoop)
            assert loop.get_debug()
            assert policy.get_event_loop() is loop  # current for the duration
            await asyncio.sleep(1)  # debug mode checks the scheduling path too
            return loop

        loop = run_virtual(main(), debug=True)
        assert loop.is_closed()
        assert asyncio.get_event_loop_policy() is policy
        assert policy.get_event_loop() is outer

        with pytest.raises(VirtualTimeLimitExceeded):
            run_virtual(asyncio.sleep(20), max_virtual_time=10)
        assert policy.get_event_loop() is outer
    finally:
        asyncio.set_event_loop(None)
        outer.close()


def test_refuses_to_run_inside_a_running_loop() -> None:
    async def outer() -> None:
        coro = asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="running event loop"):
            run_virtual(coro)

    run_virtual(outer())


def test_a_deadlock_raises_instead_of_hanging() -> None:
    from vocalis.testing import VirtualTimeDeadlock, VirtualTimeLoop

    async def stuck() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        loop.deadlock_timeout = 0.2
        await asyncio.Event().wait()

    with pytest.raises(VirtualTimeDeadlock, match="nothing can wake the loop"):
        run_virtual(stuck())


def test_virtual_time_decorator_runs_an_async_test_function(tmp_path) -> None:
    from vocalis.testing import virtual_time

    @virtual_time
    async def check(path) -> float:
        await asyncio.sleep(30)
        return asyncio.get_running_loop().time()

    import inspect

    assert not inspect.iscoroutinefunction(check)
    assert list(inspect.signature(check).parameters) == ["path"]
    started = time.perf_counter()
    assert check(tmp_path) == 30.0
    assert time.perf_counter() - started < 0.5


def test_real_time_io_keeps_real_time_while_a_socket_is_open() -> None:
    # `vocalis talk --fast`: a peer behind a socket (an API, an MCP server)
    # gets the real seconds its timeouts promise; without one the clock jumps.
    import socket
    import time

    async def sleep_with(open_socket: bool) -> float:
        loop = asyncio.get_running_loop()
        pair = socket.socketpair() if open_socket else None
        if pair is not None:
            loop.add_reader(pair[0], lambda: None)
        started = time.perf_counter()
        await asyncio.sleep(0.3)
        elapsed = time.perf_counter() - started
        if pair is not None:
            loop.remove_reader(pair[0])
            for sock in pair:
                sock.close()
        return elapsed

    assert run_virtual(sleep_with(False), real_time_io=True) < 0.2
    assert run_virtual(sleep_with(True), real_time_io=True) >= 0.29
    assert run_virtual(sleep_with(True)) < 0.2  # tests keep jumping
