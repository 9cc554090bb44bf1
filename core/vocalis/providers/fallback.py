"""Fallback providers: the next provider takes over when one fails.

``FallbackLLM([primary, secondary])`` is itself an LLM, so a pipeline uses it
like any other. A provider that raises, times out, returns garbage or
ends its stream *before its first output* is skipped (with retries per
:class:`ConnectOptions`) and marked unavailable; a background probe brings
it back. Once output has started, a
failure is raised instead of retried: the user may already have heard part
of the reply, and saying it twice is worse than stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from loguru import logger

from vocalis.audio import AudioFrame
from vocalis.chat import ChatContext
from vocalis.events import EventEmitter
from vocalis.providers.base import Provider, ProviderError
from vocalis.providers.guards import check_chunk, check_speech_event, garbage
from vocalis.providers.llm import LLM, ChatChunk, ToolSpec
from vocalis.providers.stt import STT, SpeechEvent
from vocalis.providers.tts import TTS
from vocalis.settings import ProviderSettings
from vocalis.text import speakable

P = TypeVar("P", bound=Provider)
T = TypeVar("T")


@dataclass(frozen=True)
class ConnectOptions:
    """How hard to try one provider before moving on.

    Attributes:
        timeout: Seconds to wait for the first output (or a whole STT result).
        max_retry: Extra attempts on the same provider before the next one.
        retry_interval: Seconds between those attempts.
        probe_interval: Seconds between background checks of a failed
            provider (its ``prewarm`` must succeed to bring it back).
    """

    timeout: float = 10.0
    max_retry: int = 0
    retry_interval: float = 1.0
    probe_interval: float = 30.0


class _Fallback(Generic[P]):
    """The bookkeeping shared by every fallback kind."""

    def __init__(self, providers: Sequence[P], connect: ConnectOptions) -> None:
        if not providers:
            raise ValueError("a fallback needs at least one provider")
        self.providers = list(providers)
        self.connect = connect
        self.events = EventEmitter()
        self._down: set[int] = set()
        self._probes: dict[int, asyncio.Task[None]] = {}

    def available(self, provider: P) -> bool:
        """Whether ``provider`` is currently tried."""
        return id(provider) not in self._down

    def _candidates(self) -> list[P]:
        up = [p for p in self.providers if self.available(p)]
        return up or list(self.providers)  # all down: try them all anyway

    def _mark_down(self, provider: P, error: BaseException) -> None:
        if id(provider) in self._down:
            return
        self._down.add(id(provider))
        reason = _describe(provider, error).removeprefix(f"{provider.label}: ")
        logger.warning("{} is unavailable ({}); falling back", provider.label, reason)
        self.events.emit("availability_changed", {"provider": provider.label, "available": False, "error": reason})
        self._probes[id(provider)] = asyncio.get_running_loop().create_task(self._probe(provider))

    async def _probe(self, provider: P) -> None:
        while True:
            await asyncio.sleep(self.connect.probe_interval)
            try:
                await asyncio.wait_for(provider.prewarm(), self.connect.timeout)
            except Exception:
                continue
            self._down.discard(id(provider))
            self._probes.pop(id(provider), None)
            logger.info("{} is available again", provider.label)
            self.events.emit("availability_changed", {"provider": provider.label, "available": True})
            return

    async def _attempts(self, provider: P, start: Callable[[], Awaitable[T]]) -> T:
        last: BaseException | None = None
        for attempt in range(self.connect.max_retry + 1):
            if attempt:
                await asyncio.sleep(self.connect.retry_interval)
            try:
                return await asyncio.wait_for(start(), self.connect.timeout)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except TimeoutError:
                last = TimeoutError(f"no output within {self.connect.timeout:g} s")
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
            check: Validates the first item (raising for garbage); when
                given, a stream that ends without any item is a failure too.
        """
        errors: list[str] = []
        for provider in self._candidates():

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
                first, rest = await self._attempts(provider, start)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:
                errors.append(_describe(provider, exc))
                self._mark_down(provider, exc)
                continue
            # Output has started: from here a failure is raised, never retried elsewhere.
            async with contextlib.aclosing(rest) as items:  # type: ignore[type-var]
                if first is not None:
                    yield first
                async for item in items:
                    yield item
            return
        raise ProviderError(f"every {kind} failed: " + "; ".join(errors), provider=label)

    async def _close_probes(self) -> None:
        for task in self._probes.values():
            task.cancel()
        await asyncio.gather(*self._probes.values(), return_exceptions=True)
        self._probes.clear()


class _NoSettings(ProviderSettings):
    pass


async def _first_and_rest(iterator: AsyncIterator[T]) -> tuple[T | None, AsyncIterator[T]]:
    try:
        first = await iterator.__anext__()
    except StopAsyncIteration:
        return None, iterator
    return first, iterator


class _FallbackProvider(Generic[P]):
    """What the three fallback providers share (their ``fallback`` bookkeeping)."""

    fallback: _Fallback[P]

    @property
    def events(self) -> EventEmitter:
        """Emits ``availability_changed`` (``provider``, ``available``, ``error``)."""
        return self.fallback.events

    async def prewarm(self) -> None:
        await asyncio.gather(*(p.prewarm() for p in self.fallback.providers), return_exceptions=True)

    async def aclose(self) -> None:
        await self.fallback._close_probes()

    def __repr__(self) -> str:
        labels = ", ".join(p.label for p in self.fallback.providers)
        return f"<{type(self).__name__} [{labels}] {self.fallback.connect}>"


class FallbackLLM(_FallbackProvider[LLM], LLM):
    """An LLM that tries ``providers`` in order (see the module docstring).

    Args:
        providers: LLMs in order of preference.
        connect: Timeouts and retries.
    """

    name: ClassVar[str] = "fallback"
    Settings: ClassVar[type[ProviderSettings]] = _NoSettings

    def __init__(self, providers: Sequence[LLM], *, connect: ConnectOptions | None = None) -> None:
        super().__init__(settings=_NoSettings())
        self.fallback: _Fallback[LLM] = _Fallback(providers, connect or ConnectOptions())

    async def chat(
        self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = (), tool_choice: str | None = None
    ) -> AsyncIterator[ChatChunk]:
        def open_stream(provider: LLM) -> AsyncIterator[ChatChunk]:
            return provider.chat(chat_ctx, tools=tools, tool_choice=tool_choice)

        stream = self.fallback.stream("LLM", self.label, open_stream, check_chunk)
        async with contextlib.aclosing(stream) as chunks:  # type: ignore[type-var]  # an async generator
            async for chunk in chunks:
                yield chunk


class FallbackTTS(_FallbackProvider[TTS], TTS):
    """A TTS that tries ``providers`` in order; never switches mid-utterance.

    Args:
        providers: TTS providers in order of preference (ideally one rate).
        connect: Timeouts and retries.
    """

    name: ClassVar[str] = "fallback"
    Settings: ClassVar[type[ProviderSettings]] = _NoSettings

    def __init__(self, providers: Sequence[TTS], *, connect: ConnectOptions | None = None) -> None:
        super().__init__(settings=_NoSettings())
        self.fallback: _Fallback[TTS] = _Fallback(providers, connect or ConnectOptions())
        self.sample_rate = providers[0].sample_rate  # type: ignore[misc]

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        if not speakable(text):
            return  # nothing to say: no provider is asked, none can fail

        def open_stream(provider: TTS) -> AsyncIterator[AudioFrame]:
            return provider.synthesize(text)

        stream = self.fallback.stream("TTS", self.label, open_stream, _check_frame)
        async with contextlib.aclosing(stream) as frames:  # type: ignore[type-var]  # an async generator
            async for frame in frames:
                yield frame


class FallbackSTT(_FallbackProvider[STT], STT):
    """A one-shot STT that tries ``providers`` in order (segmented by the pipeline's VAD).

    Args:
        providers: STT providers in order of preference.
        connect: Timeouts and retries.
    """

    name: ClassVar[str] = "fallback"
    streaming: ClassVar[bool] = False
    Settings: ClassVar[type[ProviderSettings]] = _NoSettings

    def __init__(self, providers: Sequence[STT], *, connect: ConnectOptions | None = None) -> None:
        super().__init__(settings=_NoSettings())
        self.fallback: _Fallback[STT] = _Fallback(providers, connect or ConnectOptions())

    async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        errors: list[str] = []
        for provider in self.fallback._candidates():

            async def attempt(p: STT = provider) -> SpeechEvent:
                return check_speech_event(p.label, await p.recognize(frames, language=language))

            try:
                return await self.fallback._attempts(provider, attempt)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                errors.append(_describe(provider, exc))
                self.fallback._mark_down(provider, exc)
        raise ProviderError("every STT failed: " + "; ".join(errors), provider=self.label)


def _check_frame(label: str, frame: Any) -> AudioFrame:
    if not isinstance(frame, AudioFrame):
        raise garbage(label, frame, "an AudioFrame")
    return frame


def _describe(provider: Provider, exc: BaseException) -> str:
    """``"<label>: <message>"``, without repeating a label the error already has."""
    text = str(exc) or type(exc).__name__
    return text if text.startswith(f"{provider.label}: ") else f"{provider.label}: {text}"
