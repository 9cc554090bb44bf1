"""Guards around provider calls: type checks, time limits, paced restarts.

A provider is code the session does not control: a plugin may yield the
wrong type, stop answering, or end its stream early. Each guard turns such a
fault into a :class:`ProviderError` that names the provider and says what
happened ("returned a str instead of a ChatChunk", "timed out after 15 s
waiting for the first chunk"), so the session can report it, end the turn
cleanly and go on.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from vocalis.audio import AudioFrame
from vocalis.providers.base import ProviderError, as_provider_error
from vocalis.providers.llm import ChatChunk, ToolCallRequest
from vocalis.providers.realtime import RealtimeEvent, RealtimeEventType
from vocalis.providers.stt import SpeechEvent, SpeechEventType
from vocalis.providers.tts import SynthesizedAudio
from vocalis.providers.vad import VADEvent, VADEventType

T = TypeVar("T")

END = object()
"""Returned by :func:`next_item` when the iterator is exhausted."""


def _a(value: Any) -> str:
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def garbage(label: str, value: Any, expected: str) -> ProviderError:
    """The error for a provider that returned the wrong type."""
    return ProviderError(f"returned {_a(value)} instead of {expected}", provider=label)


def check_chunk(label: str, chunk: Any) -> ChatChunk:
    """A :class:`ChatChunk` with a str text and complete tool calls, or an error."""
    if not isinstance(chunk, ChatChunk):
        raise garbage(label, chunk, "a ChatChunk")
    if not isinstance(chunk.text, str):
        raise ProviderError(f"returned a ChatChunk whose text is {_a(chunk.text)}, not a str", provider=label)
    if not isinstance(chunk.tool_calls, list) or not all(
        isinstance(call, ToolCallRequest) and isinstance(call.name, str) and isinstance(call.arguments, str)
        for call in chunk.tool_calls
    ):
        raise ProviderError("returned a ChatChunk with malformed tool calls", provider=label)
    return chunk


def check_audio(label: str, item: Any) -> SynthesizedAudio:
    """A :class:`SynthesizedAudio` holding an :class:`AudioFrame`, or an error."""
    if not isinstance(item, SynthesizedAudio):
        raise garbage(label, item, "a SynthesizedAudio")
    if not isinstance(item.frame, AudioFrame):
        raise garbage(label, item.frame, "an AudioFrame")
    if not isinstance(item.text, str):
        raise ProviderError(f"returned audio whose text is {_a(item.text)}, not a str", provider=label)
    return item


def check_speech_event(label: str, event: Any) -> SpeechEvent:
    """A :class:`SpeechEvent` of a known type with str text, or an error."""
    if not isinstance(event, SpeechEvent):
        raise garbage(label, event, "a SpeechEvent")
    if not isinstance(event.type, SpeechEventType) or not isinstance(event.text, str):
        raise ProviderError(
            f"returned a malformed SpeechEvent (type {event.type!r}, text {_a(event.text)})", provider=label
        )
    return event


def check_vad_event(label: str, event: Any) -> VADEvent:
    """A :class:`VADEvent` of a known type, or an error."""
    if not isinstance(event, VADEvent):
        raise garbage(label, event, "a VADEvent")
    if not isinstance(event.type, VADEventType):
        raise ProviderError(f"returned a VADEvent of unknown type {event.type!r}", provider=label)
    return event


def check_realtime_event(label: str, event: Any) -> RealtimeEvent:
    """A well-formed :class:`RealtimeEvent`, or an error."""
    if not isinstance(event, RealtimeEvent):
        raise garbage(label, event, "a RealtimeEvent")
    if not isinstance(event.type, RealtimeEventType) or not isinstance(event.text, str):
        raise ProviderError(f"returned a malformed RealtimeEvent (type {event.type!r})", provider=label)
    if event.type is RealtimeEventType.AUDIO and not isinstance(event.frame, AudioFrame):
        raise garbage(label, event.frame, "an AudioFrame in an audio event")
    calls = event.tool_calls
    if event.type is RealtimeEventType.FUNCTION_CALL and not all(isinstance(c, ToolCallRequest) for c in calls):
        raise ProviderError("returned a function-call event with malformed tool calls", provider=label)
    return event


def check_probability(label: str, value: Any) -> float:
    """A finite number within 0..1 (an end-of-turn probability), or an error."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise garbage(label, value, "a probability (a float from 0 to 1)")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ProviderError(f"returned the probability {value!r}, outside 0..1", provider=label)
    return float(value)


async def next_item(label: str, iterator: AsyncIterator[T], limit: float | None, waiting_for: str) -> T | object:
    """The iterator's next item within ``limit`` seconds, or :data:`END`.

    Raises:
        ProviderError: The provider raised (labelled with ``label``) or took
            longer than ``limit``.
    """
    try:
        if limit is None:
            return await anext(iterator)
        async with asyncio.timeout(limit) as timer:
            return await anext(iterator)
    except StopAsyncIteration:
        return END
    except TimeoutError as exc:
        if limit is not None and timer.expired():
            raise ProviderError(f"timed out after {limit:g} s waiting for {waiting_for}", provider=label) from None
        raise as_provider_error(label, exc) from exc
    except Exception as exc:
        raise as_provider_error(label, exc) from exc


class Deadline:
    """Cancels a task that waits on one thing for too long.

    The task says what it waits on with :meth:`wait_on` (a few attribute
    stores, cheap enough for every audio frame); one timer checks lazily and
    re-arms itself while progress is made. When it fires, :attr:`error`
    says who timed out and the task is cancelled.

    Args:
        task: The task to cancel.
    """

    def __init__(self, task: asyncio.Task[Any] | None = None) -> None:
        self.task = task
        self.error: ProviderError | None = None
        self._loop = asyncio.get_running_loop()
        self._key = ""
        self._limit: float | None = None
        self._since = 0.0
        self._label = ""
        self._what = ""
        self._timer: asyncio.TimerHandle | None = None

    def wait_on(self, key: str, limit: float | None, label: str, what: str) -> None:
        """From now, the task waits on ``label`` for at most ``limit`` seconds (None: no limit)."""
        self._key, self._limit, self._label, self._what = key, limit, label, what
        self._since = self._loop.time()
        if limit is None:
            return
        due = self._since + limit
        # The timer only ever moves earlier here; a later deadline is found when it fires.
        if self._timer is None or due < self._timer.when() - 1e-9:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(due, self._check)

    def restart(self, key: str, limit: float | None) -> None:
        """If the task still waits on ``key``, give it ``limit`` seconds from now."""
        if self._key == key:
            self.wait_on(key, limit, self._label, self._what)

    def _check(self) -> None:
        self._timer = None
        if self._limit is None or self.task is None or self.task.done():
            return
        due = self._since + self._limit
        if self._loop.time() + 1e-9 >= due:
            self.error = ProviderError(f"timed out after {self._limit:g} s {self._what}", provider=self._label)
            self.task.cancel()
        else:
            self._timer = self._loop.call_at(due, self._check)

    def cancel(self) -> None:
        """Stop watching."""
        self._limit = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Restarts:
    """Paces the reopening of a failed stream: at once, then backing off.

    A provider that fails every time it is opened must not spin the event
    loop; one that failed once should be back without delay.
    """

    def __init__(self, cap: float = 5.0) -> None:
        self.failures = 0
        self.cap = cap

    def succeeded(self) -> None:
        """The stream delivered something: the next failure restarts at once."""
        self.failures = 0

    async def pause(self) -> None:
        """Wait before the next attempt."""
        self.failures += 1
        delay = 0.0 if self.failures == 1 else min(self.cap, 0.5 * 2 ** (self.failures - 2))
        await asyncio.sleep(delay)
