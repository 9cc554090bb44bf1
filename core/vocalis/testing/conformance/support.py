"""What the conformance suites are made of: running a check with a deadline,
test audio, watching a provider's work stop, and the word error rate.

Usable on their own in a plugin's other tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from vocalis.audio import AudioFrame
from vocalis.providers.base import ProviderError

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
    """Run a coroutine to completion with a deadline; fail on leaked tasks."""

    async def guarded() -> T:
        before = asyncio.all_tasks()
        result = await asyncio.wait_for(coro, timeout)
        await asyncio.sleep(0.05)  # let cancelled work settle
        leaked = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()]
        assert not leaked, f"tasks left running: {leaked}"
        return result

    return asyncio.run(guarded())


def frames_of(samples: Any, sample_rate: int, frame_seconds: float = 0.02) -> list[AudioFrame]:
    """Cut an int16 array into frames."""
    import numpy as np

    data = np.asarray(samples, dtype=np.int16)
    step = max(1, int(sample_rate * frame_seconds))
    return [
        AudioFrame(data[i : i + step].tobytes(), sample_rate)
        for i in range(0, len(data), step)
        if len(data[i : i + step])
    ]


def silence(seconds: float, sample_rate: int = 16_000) -> list[AudioFrame]:
    """Frames of digital silence."""
    return frames_of([0] * int(seconds * sample_rate), sample_rate)


# -- watching work stop --------------------------------------------------------
def work_modules(provider: Any, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The modules whose code counts as the provider's work.

    Each class of the provider's MRO contributes its top-level package
    (``vocalis_whisper`` for ``vocalis_whisper.stt``); classes inside the core
    contribute their own module only (``vocalis.testing.fakes.audio``), and the
    contracts in ``vocalis.providers`` nothing.
    """
    names = set(extra)
    for cls in type(provider).__mro__:
        module = cls.__module__
        if module in ("builtins", "abc", "typing") or module.startswith("vocalis.providers"):
            continue
        top = module.split(".")[0]
        names.add(module if top == "vocalis" else top)
    return tuple(sorted(names))


def busy_threads(modules: tuple[str, ...]) -> list[str]:
    """Threads (other than this one) now running code of ``modules``, described."""
    me = threading.get_ident()
    names = {t.ident: t.name for t in threading.enumerate()}
    busy = []
    for ident, frame in sys._current_frames().items():
        if ident == me:
            continue
        current: Any = frame
        while current is not None:
            module = current.f_globals.get("__name__", "")
            if any(module == m or module.startswith(m + ".") for m in modules):
                code = current.f_code
                busy.append(f"{names.get(ident, ident)} in {code.co_name} ({code.co_filename}:{current.f_lineno})")
                break
            current = current.f_back
    return busy


def _pending_tasks(before: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    me = asyncio.current_task()
    return [t for t in asyncio.all_tasks() - before if t is not me and not t.done()]


async def until_idle(modules: tuple[str, ...], before: set[asyncio.Task[Any]], within: float, what: str) -> None:
    """Wait until no task started since ``before`` is pending and no thread runs
    the provider's code; fail if that takes longer than ``within`` seconds."""
    deadline = time.perf_counter() + within
    while True:
        tasks, threads = _pending_tasks(before), busy_threads(modules)
        if not tasks and not threads:
            break
        if time.perf_counter() > deadline:
            pytest.fail(
                f"{what}: work went on {within:g} s after it was stopped: tasks {tasks}, threads {threads}",
                pytrace=False,
            )
        await asyncio.sleep(0.02)
    # Callbacks a finished thread scheduled with call_soon_threadsafe run now.
    for _ in range(3):
        await asyncio.sleep(0)


async def until_started(modules: tuple[str, ...], task: asyncio.Task[Any] | None = None, within: float = 0.1) -> None:
    """Give work time to get going: until a thread runs the provider's code,
    ``task`` is done, or ``within`` seconds passed."""
    deadline = time.perf_counter() + within
    while not busy_threads(modules) and time.perf_counter() < deadline:
        if task is not None and task.done():
            return
        await asyncio.sleep(0.005)


class StreamOutputs:
    """Counts what a provider stream sends, and what it sends once closed.

    Wraps the stream's ``send`` (every provider stream delivers through it).
    """

    def __init__(self, stream: Any) -> None:
        self.sent = 0
        self.closed = False
        self.after_close: list[Any] = []
        original = stream.send

        def send(event: Any) -> None:
            self.sent += 1
            if self.closed:
                self.after_close.append(event)
            original(event)

        stream.send = send

    def check(self, what: str) -> None:
        assert not self.after_close, (
            f"{what} sent {len(self.after_close)} event(s) after aclose(): {self.after_close[:3]}"
        )


async def drain(stream: Any, within: float = 5.0) -> list[Any]:
    """Read what is left of a closed stream; fail if reading does not end."""

    async def rest() -> list[Any]:
        return [event async for event in stream]

    try:
        return await asyncio.wait_for(rest(), within)
    except TimeoutError:
        pytest.fail(f"reading the stream did not end within {within:g} s of aclose()", pytrace=False)


def push_after_close(push: Callable[[], None]) -> None:
    """Input after close must be ignored (or refused): never restart work."""
    with contextlib.suppress(RuntimeError, ProviderError):
        push()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level edit distance over the reference length (punctuation and case ignored)."""

    def words(text: str) -> list[str]:
        return re.sub(r"[^\w\s']", " ", text.lower()).split()

    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1] / len(ref)
