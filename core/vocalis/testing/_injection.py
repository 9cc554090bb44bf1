"""The machinery behind :mod:`vocalis.testing.faults`: which requests fail, and how."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Any, TypeVar

from vocalis.audio import AudioFrame
from vocalis.providers.base import Provider
from vocalis.providers.streams import ProviderStream
from vocalis.providers.stt import STTStream
from vocalis.providers.tts import TTSStream
from vocalis.providers.vad import VADStream

T = TypeVar("T")
DEFAULT: Any = object()
"""Marks an argument left out (``None`` may be the garbage wanted)."""


class Fault(StrEnum):
    """What goes wrong with a faulted request."""

    RAISE_AT_START = "raise_at_start"
    """Raise before the first output."""
    RAISE_MID_STREAM = "raise_mid_stream"
    """Raise after ``after_chunks`` outputs (default 1)."""
    SLOW = "slow"
    """Pause ``delay`` seconds (default 120, beyond every default timeout), then go on."""
    HANG = "hang"
    """Stop answering, for ever."""
    GARBAGE = "garbage"
    """Return or yield a value of the wrong type (``garbage=``)."""
    CLOSE = "close"
    """The connection closes: a stream ends early, a request fails with a closed connection."""


class Injector:
    """Decides which requests are faulted and applies the fault at its position."""

    def __init__(
        self,
        fault: Fault,
        after_chunks: int | None,
        delay: float,
        times: int | None,
        skip: int,
        error: BaseException | None,
    ) -> None:
        self.fault = Fault(fault)
        if after_chunks is None:
            after_chunks = 1 if self.fault is Fault.RAISE_MID_STREAM else 0
        if after_chunks < 0 or (self.fault is Fault.RAISE_AT_START and after_chunks):
            raise ValueError("after_chunks must be >= 0, and 0 for RAISE_AT_START")
        self.after_chunks = after_chunks
        self.delay = delay
        self.times = times
        self.skip = skip
        self.error = error
        self.requests = 0
        self.injected = 0

    def arm(self) -> bool:
        """A request starts: whether this one is faulted."""
        self.requests += 1
        if self.requests <= self.skip or (self.times is not None and self.injected >= self.times):
            return False
        self.injected += 1
        return True

    def exception(self) -> BaseException:
        """What a faulted request raises: ``error``, or a raw connection error."""
        if self.error is not None:
            return self.error
        if self.fault is Fault.RAISE_AT_START:
            return ConnectionRefusedError("injected fault: failed at the start")
        if self.fault is Fault.RAISE_MID_STREAM:
            outputs = f"{self.after_chunks} output{'s' * (self.after_chunks != 1)}"
            return ConnectionResetError(f"injected fault: failed mid-stream, after {outputs}")
        return ConnectionAbortedError("injected fault: the connection closed before the result")

    def lost(self) -> BaseException:
        """RAISE_MID_STREAM of a single call: the work was done, the answer is lost."""
        return self.error or ConnectionResetError("injected fault: failed mid-request, the answer was lost")

    async def step(self, index: int, *, at_end: bool = False) -> str | None:
        """Called before output ``index``: raise, wait, or say "garbage"/"close"."""
        if index != self.after_chunks and not at_end:
            return None
        if self.fault in (Fault.RAISE_AT_START, Fault.RAISE_MID_STREAM):
            raise self.exception()
        if self.fault is Fault.SLOW:
            await asyncio.sleep(self.delay)
        elif self.fault is Fault.HANG:
            await asyncio.get_running_loop().create_future()
        elif self.fault is Fault.GARBAGE:
            return "garbage"
        elif self.fault is Fault.CLOSE:
            return "close"
        return None

    async def request(self) -> str | None:
        """For request/response calls: "garbage", "after" (run, then raise) or None.

        A single call has no middle: RAISE_MID_STREAM means it fails after
        the work was done (the answer is lost), and CLOSE that the
        connection drops before the answer.
        """
        if self.fault is Fault.RAISE_MID_STREAM:
            return "after"
        if self.fault is Fault.CLOSE:
            raise self.exception()
        return await self.step(0, at_end=True)

    async def wrap(self, items: AsyncIterator[T], garbage: Any) -> AsyncIterator[T]:
        """``items`` with the fault applied at ``after_chunks`` (or at the end, if shorter)."""
        index = 0
        async with contextlib.aclosing(items) as source:  # type: ignore[type-var]
            while True:
                action = await self.step(index)
                if action == "close":
                    return
                if action == "garbage":
                    yield garbage
                try:
                    item = await anext(source)
                except StopAsyncIteration:
                    if index < self.after_chunks and await self.step(index, at_end=True) == "garbage":
                        yield garbage
                    return
                yield item
                index += 1


def setup(wrapper: Provider, inner: Provider, name: str | None, injector: Injector) -> None:
    """Make ``wrapper`` look like ``inner``: same settings and label (unless ``name``)."""
    Provider.__init__(wrapper, settings=inner.settings)
    wrapper.inner = inner  # type: ignore[attr-defined]
    wrapper.name = name or inner.name  # type: ignore[misc]
    wrapper.injector = injector  # type: ignore[attr-defined]


class Faulty:
    """What every wrapper shares: lifecycle delegation and counters."""

    inner: Any
    injector: Injector

    @property
    def injected(self) -> int:
        """How many requests were faulted so far."""
        return self.injector.injected

    async def prewarm(self) -> None:
        await self.inner.prewarm()

    async def aclose(self) -> None:
        await self.inner.aclose()


ARGS_DOC = """

    Args:
        inner: The provider to wrap.
        fault: What goes wrong.
        after_chunks: Outputs delivered before the fault (0; 1 for RAISE_MID_STREAM).
        delay: Seconds a SLOW request pauses.
        times: How many requests fail (None: all of them).
        skip: Requests that pass before the first faulted one.
        garbage: What GARBAGE returns (a kind-specific wrong type by default).
        error: The exception raised instead of the default one.
        name: The label's name (default: the wrapped provider's).
"""


class FaultyStream(ProviderStream[Any]):
    """A provider stream whose events pass through the injector."""

    def __init__(self, label: str, inner: ProviderStream[Any], injector: Injector | None, garbage: Any) -> None:
        super().__init__(label)
        self._inner = inner
        events: AsyncIterator[Any] = aiter(inner)
        if injector is not None:
            events = injector.wrap(events, garbage)
        self.start_task(self._pump(events))

    async def _pump(self, events: AsyncIterator[Any]) -> None:
        async for event in events:
            self.send(event)

    def _on_end_input(self) -> None:
        self._inner.end_input()

    async def aclose(self) -> None:
        await super().aclose()
        await self._inner.aclose()


class FaultySTTStream(FaultyStream, STTStream):
    def push_frame(self, frame: AudioFrame) -> None:
        self._inner.push_frame(frame)  # type: ignore[attr-defined]

    def flush(self) -> None:
        self._inner.flush()  # type: ignore[attr-defined]


class FaultyVADStream(FaultyStream, VADStream):
    def push_frame(self, frame: AudioFrame) -> None:
        self._inner.push_frame(frame)  # type: ignore[attr-defined]

    @property
    def speech_duration(self) -> float | None:  # type: ignore[override]
        return self._inner.speech_duration  # type: ignore[attr-defined,no-any-return]


class FaultyTTSStream(FaultyStream, TTSStream):
    def push_text(self, text: str) -> None:
        self._inner.push_text(text)  # type: ignore[attr-defined]

    def flush(self) -> None:
        self._inner.flush()  # type: ignore[attr-defined]
