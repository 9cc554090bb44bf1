"""What every fallback provider shares: the chain of providers and its bookkeeping.

A :class:`FallbackChain` knows which providers are down, marks one down
when it fails (emitting ``availability_changed`` and starting a background
probe that brings it back), prewarms its providers without waiting on a
hung one (:meth:`FallbackChain.prewarm`), and runs one request through the
providers in order (:meth:`FallbackChain.stream`). The fallback providers
(:mod:`vocalis.providers.fallback`) and their streams
(:mod:`vocalis.providers.fallback_tts`, :mod:`vocalis.providers.fallback_stt`)
are built on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from loguru import logger

from vocalis.events import EventEmitter
from vocalis.providers.base import Provider, ProviderError

P = TypeVar("P", bound=Provider)
T = TypeVar("T")


@dataclass(frozen=True)
class ConnectOptions:
    """How hard to try one provider before moving on.

    Attributes:
        timeout: Seconds to wait for the first output (or a whole STT result).
            For a TTS stream, the first audio, counted from the first text
            it can speak; for an STT stream, the final transcript of a
            speech segment, counted from the segment's end. Also how long
            :meth:`FallbackChain.prewarm` waits on a provider ahead of one
            that is ready. The default, 5 s, is well below the pipeline's
            own limits (``ProviderTimeouts``: 10 s for the first audio or a
            final, 15 s for the first token), so a backup has time to answer.
        max_retry: Extra attempts on the same provider before the next one.
        retry_interval: Seconds between those attempts.
        probe_interval: Seconds between background checks of a failed
            provider (its ``prewarm`` must succeed to bring it back).
    """

    timeout: float = 5.0
    max_retry: int = 0
    retry_interval: float = 1.0
    probe_interval: float = 30.0


class FallbackChain(Generic[P]):
    """The providers of a fallback, in order, and which of them are down.

    Args:
        providers: The providers in order of preference.
        connect: Timeouts and retries.

    Attributes:
        providers: The providers in order of preference.
        connect: Timeouts and retries.
        events: Emits ``availability_changed`` (``provider``, ``available``, ``error``).
    """

    def __init__(self, providers: Sequence[P], connect: ConnectOptions) -> None:
        if not providers:
            raise ValueError("a fallback needs at least one provider")
        self.providers = list(providers)
        self.connect = connect
        self.events = EventEmitter()
        self._down: set[int] = set()
        self._probes: dict[int, asyncio.Task[None]] = {}
        self._warming: dict[int, asyncio.Task[None]] = {}  # prewarms still running, by provider

    def available(self, provider: P) -> bool:
        """Whether ``provider`` is currently tried."""
        return id(provider) not in self._down

    def candidates(self) -> list[P]:
        """The providers to try, in order: the available ones, or all when none is."""
        up = [p for p in self.providers if self.available(p)]
        return up or list(self.providers)  # all down: try them all anyway

    def mark_down(self, provider: P, error: BaseException, *, warming: asyncio.Task[None] | None = None) -> None:
        """``provider`` failed: skip it until a background probe brings it back.

        Args:
            provider: The provider that failed.
            error: Why.
            warming: Its prewarm, still running: the probe waits for it first.
        """
        key = id(provider)
        if key not in self._down:
            self._down.add(key)
            reason = describe(provider, error).removeprefix(f"{provider.label}: ")
            logger.warning("{} is unavailable ({}); falling back", provider.label, reason)
            self.events.emit("availability_changed", {"provider": provider.label, "available": False, "error": reason})
        if key not in self._probes:  # (again, after close_probes())
            self._probes[key] = asyncio.get_running_loop().create_task(self._probe(provider, warming))

    def _mark_up(self, provider: P) -> None:
        key = id(provider)
        if key not in self._down:
            return
        self._down.discard(key)
        probe = self._probes.pop(key, None)
        if probe is not None and probe is not asyncio.current_task():
            probe.cancel()
        logger.info("{} is available again", provider.label)
        self.events.emit("availability_changed", {"provider": provider.label, "available": True})

    async def _probe(self, provider: P, warming: asyncio.Task[None] | None) -> None:
        if warming is not None:
            # A prewarm that was too slow goes on, without a limit (a model may
            # load slowly): it brings the provider back when it succeeds.
            with contextlib.suppress(Exception):
                await warming
            if self.available(provider):
                return
        while True:
            await asyncio.sleep(self.connect.probe_interval)
            try:
                await asyncio.wait_for(provider.prewarm(), self.connect.timeout)
            except Exception:
                continue
            self._mark_up(provider)
            return

    # -- prewarm -------------------------------------------------------------------
    def _warm(self, provider: P) -> asyncio.Task[None]:
        """Start ``provider.prewarm()`` (or join the one running); its outcome marks it down or up."""
        key = id(provider)
        task = self._warming.get(key)
        if task is not None:
            return task
        task = asyncio.get_running_loop().create_task(provider.prewarm())
        self._warming[key] = task

        def settled(done: asyncio.Task[None]) -> None:
            if self._warming.get(key) is done:
                del self._warming[key]
            if done.cancelled():
                return
            error = done.exception()
            if error is None:
                self._mark_up(provider)
            else:
                self.mark_down(provider, error)

        task.add_done_callback(settled)
        return task

    async def prewarm(self, kind: str, label: str) -> None:
        """Prewarm the providers concurrently; return once the first usable one is ready.

        A provider that fails is marked down. Providers ahead of the first
        ready one get ``connect.timeout`` seconds; one still not ready then
        is marked down, and its prewarm goes on in the background (it comes
        back when it finishes). Providers after it keep warming in the
        background. When none is ready at the timeout, the first to become
        ready is waited for, without a limit: loading a local model may
        rightly take long.

        Raises:
            ProviderError: Every provider failed.
        """
        loop = asyncio.get_running_loop()
        tasks = [self._warm(p) for p in self.providers]
        deadline = loop.time() + self.connect.timeout
        while True:
            first = next((t for t in tasks if not (t.done() and _failed(t))), None)
            if first is None:
                errors = [describe(p, _error(t)) for p, t in zip(self.providers, tasks, strict=True)]
                raise every_failed(kind, label, errors)
            if first.done():
                break  # the most preferred usable provider is ready
            if loop.time() >= deadline and any(t.done() and not _failed(t) for t in tasks):
                break  # too slow: the first ready one will do
            running = [t for t in tasks if not t.done()]
            timeout = max(0.0, deadline - loop.time()) if loop.time() < deadline else None
            await asyncio.wait(running, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for provider, task in zip(self.providers, tasks, strict=True):
            if task.done():
                if not _failed(task):
                    break
                continue
            slow = TimeoutError(f"not ready within {self.connect.timeout:g} s (prewarm)")
            self.mark_down(provider, slow, warming=task)

    # -- clean-up --------------------------------------------------------------------
    async def close_probes(self) -> None:
        """Stop the background probes and prewarms.

        The providers that are down stay down until the next :meth:`prewarm`
        or failure starts their probe again.
        """
        tasks = [*self._probes.values(), *self._warming.values()]
        self._probes.clear()
        self._warming.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def aclose(self) -> None:
        """Stop the background work and close every provider (the chain owns them)."""
        await self.close_probes()
        results = await asyncio.gather(*(p.aclose() for p in self.providers), return_exceptions=True)
        errors = [(p, r) for p, r in zip(self.providers, results, strict=True) if isinstance(r, BaseException)]
        for provider, error in errors:
            logger.warning("{} failed to close: {}", provider.label, error)
        if errors:
            raise errors[0][1]

    async def attempts(self, provider: P, start: Callable[[], Awaitable[T]]) -> T:
        """``start()`` within the timeout, retried ``max_retry`` times; the last error is raised."""
        last: BaseException | None = None
        for attempt in range(self.connect.max_retry + 1):
            if attempt:
                await asyncio.sleep(self.connect.retry_interval)
            try:
                return await asyncio.wait_for(start(), self.connect.timeout)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except TimeoutError:
                last = no_output(self.connect.timeout)
            except Exception as exc:
                last = exc
        assert last is not None
        raise last

    async def stream(
        self,
        kind: str,
        label: str,
        open_stream: Callable[[P], AsyncIterator[T]],
        check: Callable[[str, Any], T] | None = None,
    ) -> AsyncIterator[T]:
        """Stream from the first provider that produces output in time.

        A provider that fails before its first item is marked down and the
        next one is asked; once an item was yielded, a failure propagates.

        Args:
            kind: What the providers are ("LLM", "TTS"), for the final error.
            label: The fallback's label, for the final error.
            open_stream: Starts the request on one provider.
            check: Validates the first item (raising for garbage); when
                given, a stream that ends without any item is a failure too.
        """
        errors: list[str] = []
        for provider in self.candidates():

            async def start(p: P = provider) -> tuple[T | None, AsyncIterator[T]]:
                stream = open_stream(p)
                try:
                    first, rest = await _first_and_rest(stream)
                    if check is not None:
                        if first is None:
                            raise ProviderError("stream ended before any output", provider=p.label)
                        first = check(p.label, first)
                    return first, rest
                except BaseException:
                    with contextlib.suppress(Exception):
                        await stream.aclose()  # type: ignore[attr-defined]
                    raise

            try:
                first, rest = await self.attempts(provider, start)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:
                errors.append(describe(provider, exc))
                self.mark_down(provider, exc)
                continue
            # Output has started: from here a failure is raised, never retried elsewhere.
            async with contextlib.aclosing(rest) as items:  # type: ignore[type-var]
                if first is not None:
                    yield first
                async for item in items:
                    yield item
            return
        raise every_failed(kind, label, errors)


def _failed(task: asyncio.Task[None]) -> bool:
    return task.cancelled() or task.exception() is not None


def _error(task: asyncio.Task[None]) -> BaseException:
    return asyncio.CancelledError("prewarm cancelled") if task.cancelled() else task.exception() or RuntimeError()


async def _first_and_rest(iterator: AsyncIterator[T]) -> tuple[T | None, AsyncIterator[T]]:
    try:
        first = await iterator.__anext__()
    except StopAsyncIteration:
        return None, iterator
    return first, iterator


def no_output(timeout: float) -> TimeoutError:
    """The error of a provider that produced nothing within ``timeout`` seconds."""
    return TimeoutError(f"no output within {timeout:g} s")


def every_failed(kind: str, label: str, errors: Sequence[str]) -> ProviderError:
    """The error when no provider of the chain could do the job."""
    return ProviderError(f"every {kind} failed: " + "; ".join(errors), provider=label)


def describe(provider: Provider, exc: BaseException) -> str:
    """``"<label>: <message>"``, without repeating a label the error already has."""
    text = str(exc) or type(exc).__name__
    return text if text.startswith(f"{provider.label}: ") else f"{provider.label}: {text}"
