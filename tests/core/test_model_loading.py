"""vocalis.providers.models: one load per model and process, off the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from loguru import logger

from vocalis.providers.models import ModelCache, ModelKey, clear_model_caches
from vocalis.testing import LoopWatchdog, run_virtual


class Model:
    """A stand-in for a loaded model."""

    def __init__(self, key: ModelKey) -> None:
        self.key = key


class Loader:
    """Counts its calls; can hold each load until released, or fail it."""

    def __init__(self, key: ModelKey, *, hold: bool = False, error: Exception | None = None) -> None:
        self.key = key
        self.calls = 0
        self.error = error
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self) -> Model:
        self.calls += 1
        if not self.release.wait(10):
            raise TimeoutError("the test never released the load")
        if self.error is not None:
            raise self.error
        return Model(self.key)


KEY = ModelKey.of("/models/a.onnx", threads=1)


@pytest.fixture
def cache() -> Iterator[ModelCache[ModelKey, Model]]:
    models: ModelCache[ModelKey, Model] = ModelCache("test model", thread_name="test-model")
    yield models
    models.clear()


def waiting_on(cache: ModelCache[Any, Any], key: Any) -> int:
    """How many callers are blocked waiting for the load of ``key`` in progress."""
    loading = cache._loading.get(key)
    return len(loading.outcome._condition._waiters) if loading else 0  # type: ignore[attr-defined]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_keys_are_a_path_and_sorted_options() -> None:
    assert ModelKey.of("/m", b=2, a=1) == ModelKey.of("/m", a=1, b=2)
    assert ModelKey.of("/m", a=1).options == (("a", 1),)
    assert ModelKey.of("/m", a=1) != ModelKey.of("/m", a=2) != ModelKey.of("/n", a=2)
    assert len({ModelKey.of("/m", a=1), ModelKey.of("/m", a=1)}) == 1


async def test_concurrent_loads_load_once(cache: ModelCache[ModelKey, Model]) -> None:
    loader = Loader(KEY, hold=True)
    tasks = [asyncio.create_task(cache.aload(KEY, loader)) for _ in range(4)]
    while loader.calls == 0 or waiting_on(cache, KEY) < 3:
        await asyncio.sleep(0.005)
    loader.release.set()
    models = await asyncio.gather(*tasks)
    assert loader.calls == 1
    assert all(model is models[0] for model in models)
    assert cache.load(KEY, loader) is models[0] and loader.calls == 1
    assert dict(cache) == {KEY: models[0]} and len(cache) == 1 and KEY in cache


def test_concurrent_threads_load_once(cache: ModelCache[ModelKey, Model]) -> None:
    loader = Loader(KEY, hold=True)
    results: list[Model] = []
    threads = [threading.Thread(target=lambda: results.append(cache.load(KEY, loader))) for _ in range(5)]
    for thread in threads:
        thread.start()
    wait_until(lambda: waiting_on(cache, KEY) == 4)
    loader.release.set()
    for thread in threads:
        thread.join()
    assert loader.calls == 1 and len(results) == 5
    assert all(model is results[0] for model in results)


async def test_different_options_load_separately(cache: ModelCache[ModelKey, Model]) -> None:
    one, two = ModelKey.of("/m", threads=1), ModelKey.of("/m", threads=2)
    first, second = await asyncio.gather(cache.aload(one, Loader(one)), cache.aload(two, Loader(two)))
    assert first is not second and (first.key, second.key) == (one, two)
    assert cache.get(one) is first and cache.get(two) is second
    assert cache.get(ModelKey.of("/m", threads=3)) is None


async def test_a_failed_load_reaches_every_waiter_and_is_retried(
    cache: ModelCache[ModelKey, Model],
) -> None:
    failing = Loader(KEY, hold=True, error=ValueError("bad weights"))
    tasks = [asyncio.create_task(cache.aload(KEY, failing)) for _ in range(3)]
    while failing.calls == 0 or waiting_on(cache, KEY) < 2:
        await asyncio.sleep(0.005)
    failing.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert failing.calls == 1
    assert all(isinstance(r, ValueError) and str(r) == "bad weights" for r in results)
    assert KEY not in cache and len(cache) == 0
    with pytest.raises(ValueError, match="bad weights"):
        cache.load(KEY, failing)  # not cached: tried again
    assert failing.calls == 2
    good = Loader(KEY)
    assert (await cache.aload(KEY, good)).key == KEY and good.calls == 1


def test_a_failed_load_drops_the_worker_thread_it_made(cache: ModelCache[ModelKey, Model]) -> None:
    made: list[Any] = []

    def loader() -> Model:
        made.append(cache.executor(KEY))
        raise OSError("unreadable")

    with pytest.raises(OSError):
        cache.load(KEY, loader)
    assert cache.executor(KEY) is not made[0]


def test_a_loader_needing_its_own_model_fails_instead_of_hanging(
    cache: ModelCache[ModelKey, Model],
) -> None:
    def loader() -> Model:
        return cache.load(KEY, loader)

    with pytest.raises(RuntimeError, match="needs itself"):
        cache.load(KEY, loader)
    assert KEY not in cache


def test_one_cache_serves_many_event_loops(cache: ModelCache[ModelKey, Model]) -> None:
    loader = Loader(KEY)
    first = asyncio.run(cache.aload(KEY, loader))
    assert asyncio.run(cache.aload(KEY, loader)) is first
    assert run_virtual(cache.aload(KEY, loader)) is first
    assert loader.calls == 1
    # Loops in two threads at once still share one load.
    other = ModelKey.of("/m", threads=4)
    slow = Loader(other, hold=True)
    results: list[Model] = []
    threads = [
        threading.Thread(target=lambda: results.append(asyncio.run(cache.aload(other, slow)))),
        threading.Thread(target=lambda: results.append(run_virtual(cache.aload(other, slow)))),
    ]
    for thread in threads:
        thread.start()
    wait_until(lambda: waiting_on(cache, other) == 1)
    slow.release.set()
    for thread in threads:
        thread.join()
    assert slow.calls == 1 and results[0] is results[1]


def test_loading_never_blocks_the_event_loop(cache: ModelCache[ModelKey, Model]) -> None:
    def slow() -> Model:
        time.sleep(0.6)
        return Model(KEY)

    async def main() -> list[Model]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        models = await asyncio.gather(*(cache.aload(KEY, slow) for _ in range(3)))
        ticker.cancel()
        assert ticks >= 5  # the loop kept running while the model loaded
        return list(models)

    with LoopWatchdog(threshold=0.2) as watchdog:
        models = asyncio.run(main())
    watchdog.check()
    assert models[0] is models[1] is models[2]


async def test_a_cancelled_caller_leaves_the_load_to_finish(
    cache: ModelCache[ModelKey, Model],
) -> None:
    loader = Loader(KEY, hold=True)
    task = asyncio.create_task(cache.aload(KEY, loader))
    while loader.calls == 0:
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    loader.release.set()
    model = await cache.aload(KEY, loader)
    assert loader.calls == 1 and cache.get(KEY) is model


def test_each_load_is_logged_with_its_time(cache: ModelCache[ModelKey, Model]) -> None:
    described: ModelCache[ModelKey, Model] = ModelCache(
        "voice", describe=lambda key, model: f"voice {key.path} ({dict(key.options)['threads']} thread)"
    )
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(message.record["message"]), level="DEBUG")
    try:
        cache.load(KEY, Loader(KEY))
        cache.load(KEY, Loader(KEY))
        described.load(KEY, Loader(KEY))
    finally:
        logger.remove(sink)
    assert len(messages) == 2
    assert messages[0].startswith(f"loaded test model {KEY} in ") and messages[0].endswith(" s")
    assert messages[1].startswith("loaded voice /models/a.onnx (1 thread) in ")


def test_worker_threads_per_model_or_shared(cache: ModelCache[ModelKey, Model]) -> None:
    other = ModelKey.of("/m", threads=2)
    assert cache.executor(KEY) is cache.executor(KEY)
    assert cache.executor(KEY) is not cache.executor(other)
    assert cache.executor() is cache.executor() is not cache.executor(KEY)
    names = {cache.executor(KEY).submit(lambda: threading.current_thread().name).result() for _ in range(5)}
    assert len(names) == 1 and next(iter(names)).startswith("test-model")


async def test_clear_forgets_models_and_loads_again(cache: ModelCache[ModelKey, Model]) -> None:
    loader = Loader(KEY)
    first = await cache.aload(KEY, loader)
    worker = cache.executor(KEY)
    cache.clear()
    assert len(cache) == 0 and cache.get(KEY) is None
    assert worker.submit(lambda: 1).result() == 1  # handed-out workers keep working
    second = await cache.aload(KEY, loader)
    assert second is not first and loader.calls == 2
    assert cache.executor(KEY) is not worker
    clear_model_caches()
    assert len(cache) == 0
    assert await cache.aload(KEY, loader) is not second and loader.calls == 3


def test_a_load_running_during_clear_answers_but_is_not_kept(
    cache: ModelCache[ModelKey, Model],
) -> None:
    loader = Loader(KEY, hold=True)
    results: list[Model] = []
    thread = threading.Thread(target=lambda: results.append(cache.load(KEY, loader)))
    thread.start()
    wait_until(lambda: loader.calls == 1)
    cache.clear()
    loader.release.set()
    thread.join()
    assert results[0].key == KEY and KEY not in cache


def test_a_warm_up_runs_once_per_load_before_anyone_gets_the_model() -> None:
    warmed: list[Model] = []
    handed: list[Model] = []

    def warm_up(model: Model) -> None:
        assert not handed, "a caller got the model before its warm-up"
        time.sleep(0.05)  # concurrent callers must wait for it too
        warmed.append(model)

    models: ModelCache[ModelKey, Model] = ModelCache("test model", warm_up=warm_up)
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")
    try:
        threads = [threading.Thread(target=lambda: handed.append(models.load(KEY, Loader(KEY)))) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        models.load(KEY, Loader(KEY))
    finally:
        logger.remove(sink)
        models.clear()
    assert len(warmed) == 1 and all(model is warmed[0] for model in handed) and len(handed) == 4
    assert [line for line in lines if "warm-up" in line and line.startswith("loaded test model")]


def test_a_failed_warm_up_fails_the_load_and_the_next_call_tries_again() -> None:
    attempts: list[int] = []

    def warm_up(model: Model) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first inference failed")

    models: ModelCache[ModelKey, Model] = ModelCache("test model", warm_up=warm_up)
    try:
        with pytest.raises(RuntimeError, match="first inference failed"):
            models.load(KEY, Loader(KEY))
        assert KEY not in models
        assert isinstance(models.load(KEY, Loader(KEY)), Model) and len(attempts) == 2
    finally:
        models.clear()
