"""Scale-out, for real: three workers behind HAProxy, conversations kept in Redis.

- 60 concurrent conversations spread over the workers;
- SIGTERM one worker mid-call: its calls either finish or resume on another
  worker with their history; no user message is lost or doubled;
- a worker at capacity: new sessions land on the others;
- a Prometheus scrape of every worker reads the sessions it admitted.
"""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import aiohttp
import pytest

pytest.importorskip("vocalis_websocket", reason="needs vocalis-websocket too: runs in `all`")

from cluster_harness import (
    DEADLINE,
    REQUIRE_HAPROXY,
    TOKEN,
    Caller,
    HAProxy,
    Worker,
    find_haproxy,
    start_haproxy,
    start_worker,
    stop_process,
    wait_for,
)

CALLERS = 60


@pytest.fixture
def haproxy_binary() -> str:
    binary = find_haproxy()
    if binary is None:
        if REQUIRE_HAPROXY:
            pytest.fail("VOCALIS_REQUIRE_HAPROXY is set but haproxy is not installed")
        pytest.skip("needs Debian's haproxy")
    return binary


def _stop_all(proxy: HAProxy | None, workers: list[Worker]) -> None:
    if proxy is not None:
        stop_process(proxy.proc)
    for worker in workers:
        worker.stop()
    for worker in workers:
        stop_process(worker.proc)


def _scrape(worker: Worker) -> dict[str, float]:
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{worker.port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        text = reply.read().decode()
    values = {}
    for line in text.splitlines():
        match = re.match(r"^(vocalis_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", line)
        if match:
            values[match.group(1)] = float(match.group(2))
    return values


async def test_sixty_calls_survive_a_worker_shutdown(haproxy_binary: str, redis_url: str, tmp_path: Path) -> None:
    workers = await asyncio.gather(
        *(asyncio.to_thread(start_worker, f"w{i}", redis_url, tmp_path, "--drain-timeout", "2") for i in (1, 2, 3))
    )
    proxy: HAProxy | None = None
    try:
        proxy = await asyncio.to_thread(start_haproxy, haproxy_binary, workers, tmp_path)
        base = f"http://127.0.0.1:{proxy.port}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DEADLINE)) as http:
            callers = [Caller(base, http) for _ in range(CALLERS)]
            await asyncio.gather(*(c.connect() for c in callers))
            first = await asyncio.gather(*(c.say(f"c{i} one") for i, c in enumerate(callers)))
            assert first == [f"heard: c{i} one" for i in range(CALLERS)]
            admitted = [(await asyncio.to_thread(_scrape, w))["vocalis_sessions_admitted_total"] for w in workers]
            assert sum(admitted) == CALLERS and min(admitted) > 0, admitted  # spread over all three

            # Mid-call, the first worker is told to stop: it drains for 2 s, then closes its calls.
            stopping = workers[0]
            stopping.stop(signal.SIGTERM)
            second = await asyncio.gather(*(c.say(f"c{i} two") for i, c in enumerate(callers)))
            await asyncio.to_thread(wait_for, lambda: stopping.proc.poll() is not None, "the worker to exit")
            assert stopping.proc.returncode == 0, stopping.log.read_text()[-3000:]
            third = await asyncio.gather(*(c.say(f"c{i} three") for i, c in enumerate(callers)))

            # Every caller's history is whole, in order, once: nothing lost across the move.
            assert second == [f"heard: c{i} one | c{i} two" for i in range(CALLERS)]
            assert third == [f"heard: c{i} one | c{i} two | c{i} three" for i in range(CALLERS)]
            moved = [c for c in callers if c.resumed]
            assert len(moved) == admitted[0], (len(moved), admitted)
            scrapes = [await asyncio.to_thread(_scrape, w) for w in workers[1:]]
            resumed = sum(m["vocalis_sessions_resumed_total"] for m in scrapes)
            assert resumed >= len(moved)
            await asyncio.gather(*(c.close() for c in callers))
    finally:
        await asyncio.to_thread(_stop_all, proxy, workers)


async def test_new_sessions_land_elsewhere_when_a_worker_is_full(
    haproxy_binary: str, redis_url: str, tmp_path: Path
) -> None:
    small, big = await asyncio.gather(
        asyncio.to_thread(start_worker, "small", redis_url, tmp_path, "--max-sessions", "2"),
        asyncio.to_thread(start_worker, "big", redis_url, tmp_path, "--max-sessions", "100"),
    )
    proxy: HAProxy | None = None
    try:
        proxy = await asyncio.to_thread(start_haproxy, haproxy_binary, [small, big], tmp_path)
        base = f"http://127.0.0.1:{proxy.port}"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DEADLINE)) as http:
            callers = [Caller(base, http) for _ in range(12)]
            for caller in callers:  # one by one, so the balancer sees each worker's count
                await caller.connect()
            replies = await asyncio.gather(*(c.say(f"c{i}") for i, c in enumerate(callers)))
            assert replies == [f"heard: c{i}" for i in range(12)]
            small_metrics = await asyncio.to_thread(_scrape, small)
            big_metrics = await asyncio.to_thread(_scrape, big)
            assert small_metrics["vocalis_sessions_active"] <= 2
            assert small_metrics["vocalis_sessions_active"] + big_metrics["vocalis_sessions_active"] == 12
            await asyncio.gather(*(c.close() for c in callers))
    finally:
        await asyncio.to_thread(_stop_all, proxy, [small, big])
