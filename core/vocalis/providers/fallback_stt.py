"""The stream of :class:`~vocalis.providers.fallback.FallbackSTT`: one provider's stream, replaced when it fails.

The stream opens the first available provider's own :meth:`STT.stream` (a
non-streaming provider is wrapped in :class:`SegmentedSTTStream`), forwards
the audio and the pipeline's segment marks to it, and relays its events.
The audio no final transcript has covered yet is kept (:class:`AudioLog`, at
most ``max_replay`` seconds). When the provider's stream fails, ends early,
yields garbage, or gives no final within ``ConnectOptions.timeout`` of a
segment's end, the provider is marked down and the next one gets that audio
again, marks included: the words the user said while the first one failed
still reach the conversation, once and in order (audio a final already
covered is never replayed). Interims of the failed provider are superseded
by the next one's.

The stream is a :class:`SegmentedSTTStream` so that the pipeline drives it
with its VAD's segment boundaries (``start_segment``, ``speculate``,
``flush(use_speculation=...)``); those are forwarded to a segmented member
and only logged for a streaming one. A non-streaming member therefore needs
the pipeline's VAD, as it does on its own.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from vocalis.audio import AudioFrame, AudioResampler
from vocalis.providers.adapters import SegmentedSTTStream
from vocalis.providers.base import ErrorKind
from vocalis.providers.fallback_core import FallbackChain, describe, every_failed
from vocalis.providers.guards import check_speech_event
from vocalis.providers.stt import STT, SpeechEvent, SpeechEventType, STTStream

_EPSILON = 1e-6
_BOUNDARIES = (SpeechEventType.START_OF_SPEECH, SpeechEventType.END_OF_SPEECH)


@dataclass(frozen=True, slots=True)
class _Mark:
    """A call of the pipeline between frames: a segment's start, or a flush.

    ``end`` is a flush that closes a segment (a final is owed for it);
    ``flush`` one with no segment open.
    """

    kind: Literal["start", "end", "flush"]


class AudioLog:
    """The audio no final transcript has covered yet, with the pipeline's marks in between.

    Positions are seconds of audio pushed since the stream began.

    Args:
        max_seconds: Audio kept at most; older audio is dropped first.

    Attributes:
        position: Seconds of audio pushed so far.
        segment_open: Whether a segment was started and not flushed yet.
    """

    def __init__(self, max_seconds: float) -> None:
        self.max_seconds = max_seconds
        self.position = 0.0
        self.segment_open = False
        self._entries: deque[tuple[float, AudioFrame | _Mark]] = deque()  # (position, frame or mark)
        self._seconds = 0.0  # audio in the log
        self._open_at_start = False  # a segment was open where the log begins

    @property
    def start(self) -> float:
        """The position where the log begins."""
        return self._entries[0][0] if self._entries else self.position

    @property
    def owed(self) -> int:
        """Segments flushed in the log whose final has not come."""
        return sum(1 for _, item in self._entries if isinstance(item, _Mark) and item.kind == "end")

    def add_frame(self, frame: AudioFrame) -> None:
        """Audio was pushed."""
        self._entries.append((self.position, frame))
        self.position += frame.duration
        self._seconds += frame.duration
        while self._seconds > self.max_seconds + _EPSILON:
            self._pop()  # bounded: the oldest audio goes first

    def mark(self, kind: Literal["start", "flush"], *, owed: bool = True) -> _Mark:
        """The pipeline started a segment or flushed; returns the mark logged.

        Args:
            kind: Which call.
            owed: For a flush that closes a segment: whether a final is owed
                for it (not when the recogniser finalised the speech on its own).
        """
        if kind == "start":
            self.segment_open = True
            entry = _Mark("start")
        else:
            entry = _Mark("end" if self.segment_open and owed else "flush")
            self.segment_open = False
        self._entries.append((self.position, entry))
        return entry

    def finalised(self, end: float | None) -> None:
        """A final transcript came: drop the audio it covers.

        It answers the oldest segment owed a final, so it covers the audio up
        to that segment's end. A final nobody asked for (the recogniser
        finalised on its own) covers the audio up to ``end``, its last word,
        when it says so, else all the audio pushed so far: audio is never
        replayed into a final twice, at worst a little less is.
        """
        cut = next((at for at, item in self._entries if isinstance(item, _Mark) and item.kind == "end"), None)
        if cut is None:
            cut = self.position if end is None else min(end, self.position)
        while self._entries:
            at, item = self._entries[0]
            if isinstance(item, AudioFrame):
                if at + item.duration > cut + _EPSILON:
                    return
            elif at > cut + _EPSILON or (item.kind == "start" and at >= cut - _EPSILON):
                return
            self._pop()

    def _pop(self) -> None:
        _, item = self._entries.popleft()
        if isinstance(item, AudioFrame):
            self._seconds -= item.duration
        else:
            self._open_at_start = item.kind == "start"

    def replay(
        self, push: Callable[[AudioFrame], None], start_segment: Callable[[], None] | None, flush: Callable[[], None]
    ) -> int:
        """Push the log into a new provider's stream; returns the finals it owes for it.

        Args:
            push: Takes a frame.
            start_segment: Starts a segment (None: a streaming provider, which finds speech itself).
            flush: Ends a segment.
        """
        if start_segment is not None and self._open_at_start:
            start_segment()
        owed = 0
        for _, item in self._entries:
            if isinstance(item, AudioFrame):
                push(item)
            elif item.kind == "start":
                if start_segment is not None:
                    start_segment()
            else:
                flush()
                owed += item.kind == "end"
        return owed


class FallbackSTTStream(SegmentedSTTStream):
    """An :class:`STTStream` over the chain's providers' streams (see the module docstring).

    Args:
        stt: The fallback provider (the stream's label and input rate).
        chain: Its providers and their availability.
        language: Passed to each provider's stream.
        max_replay: Seconds of audio kept for a replay at most.
    """

    def __init__(
        self, stt: STT, chain: FallbackChain[STT], *, language: str | None = None, max_replay: float = 30.0
    ) -> None:
        self._chain = chain
        self._rate = stt.sample_rate
        self._log = AudioLog(max_replay)
        self._inner: STTStream | None = None
        self._provider: STT | None = None
        self._resampler: AudioResampler | None = None
        self._final_timer: asyncio.TimerHandle | None = None
        self._quiet = 0  # finals owed for replayed segments: their speech boundaries were relayed already
        self._in_speech = False  # the speech boundary relayed last was a start
        # A final came during the open segment, unasked, and no words since: like
        # the pipeline (OwedFinals), its flush is then owed no final.
        self._finalised_early = False
        self._origin = 0.0  # the log position where the provider's stream started
        # The base's recognition is never used (no interims, no segment limit):
        # it starts ``_run`` below as the stream's worker.
        super().__init__(stt, language=language, interim_interval=0.0, max_segment=None)

    @property
    def provider(self) -> STT | None:
        """The provider whose stream is listening (None between attempts)."""
        return self._provider

    # -- input, as the pipeline drives it -------------------------------------------------
    def push_frame(self, frame: AudioFrame) -> None:
        if self.input_ended:
            return
        self._log.add_frame(frame)
        if self._inner is not None:
            self._push(self._inner, frame)

    def _push(self, inner: STTStream, frame: AudioFrame) -> None:
        if self._resampler is not None:
            converted = self._resampler.push(frame)
            if converted is None:
                return  # the resampler is still filling
            frame = converted
        try:
            inner.push_frame(frame)
        except Exception as exc:
            inner.fail(exc)  # the relay sees it as that provider's failure

    def start_segment(self) -> None:
        self._finalised_early = False
        self._log.mark("start")
        if isinstance(self._inner, SegmentedSTTStream):
            self._inner.start_segment()

    def speculate(self) -> None:
        if isinstance(self._inner, SegmentedSTTStream):
            self._inner.speculate()

    def drop_speculation(self) -> None:
        if isinstance(self._inner, SegmentedSTTStream):
            self._inner.drop_speculation()

    @property
    def speculating(self) -> bool:
        return isinstance(self._inner, SegmentedSTTStream) and self._inner.speculating

    def flush(self, *, use_speculation: bool = False) -> None:
        mark = self._log.mark("flush", owed=not self._finalised_early)
        self._finalised_early = False
        inner = self._inner
        if isinstance(inner, SegmentedSTTStream):
            inner.flush(use_speculation=use_speculation)
        elif inner is not None:
            inner.flush()
        if mark.kind == "end":
            self._arm_final_timer()

    def _on_end_input(self) -> None:
        if self._inner is not None:
            self._inner.end_input()

    # -- the final-transcript timeout -----------------------------------------------------
    def _arm_final_timer(self) -> None:
        if self._final_timer is None and self._inner is not None and self._log.owed:
            timeout = self._chain.connect.timeout
            self._final_timer = asyncio.get_running_loop().call_later(timeout, self._final_overdue, self._inner)

    def _cancel_final_timer(self) -> None:
        if self._final_timer is not None:
            self._final_timer.cancel()
            self._final_timer = None

    def _final_overdue(self, inner: STTStream) -> None:
        self._final_timer = None
        if inner is self._inner and self._provider is not None:
            timeout = self._chain.connect.timeout
            message = f"no final transcript within {timeout:g} s of the end of speech"
            inner.fail(self._provider.error(message, kind=ErrorKind.TIMEOUT))

    # -- the relay -------------------------------------------------------------------------
    async def _run(self) -> None:
        connect = self._chain.connect
        failed: dict[int, str] = {}  # providers that failed since the last final: id -> why
        while True:
            provider = next((p for p in self._chain.candidates() if id(p) not in failed), None)
            if provider is None:
                raise every_failed("STT", self.label, list(failed.values()))
            last: Exception | None = None
            for attempt in range(connect.max_retry + 1):
                if attempt:
                    await asyncio.sleep(connect.retry_interval)
                try:
                    await self._listen_with(provider, failed)
                    return
                except Exception as exc:
                    last = exc
            assert last is not None
            failed[id(provider)] = describe(provider, last)
            self._chain.mark_down(provider, last)

    async def _listen_with(self, provider: STT, failed: dict[int, str]) -> None:
        """Relay ``provider``'s stream until it ends; raise if it fails."""
        language = self._language
        inner: STTStream
        if provider.streaming:
            inner = provider.stream(language=language)
        else:
            inner = SegmentedSTTStream(provider, language=language)
        self._resampler = AudioResampler(provider.sample_rate) if provider.sample_rate != self._rate else None
        try:
            self._origin = self._log.start
            start = inner.start_segment if isinstance(inner, SegmentedSTTStream) else None
            self._quiet = self._log.replay(lambda frame: self._push(inner, frame), start, inner.flush)
            if self.input_ended:
                inner.end_input()
            self._inner, self._provider = inner, provider
            self._arm_final_timer()
            async for item in inner:
                self._relay(check_speech_event(provider.label, item), failed)
        finally:
            self._cancel_final_timer()
            self._inner = self._provider = None
            await inner.aclose()
        if not self.input_ended:
            raise provider.error("stream ended early: it closed while audio was still coming")

    def _relay(self, event: SpeechEvent, failed: dict[int, str]) -> None:
        if event.type is SpeechEventType.FINAL_TRANSCRIPT:
            self._finalised_early = self._log.segment_open and not self._log.owed
            self._cancel_final_timer()
            end = self._origin + event.end_time if event.end_time > 0 else None
            self._log.finalised(end)
            self._quiet = max(0, self._quiet - 1)
            failed.clear()  # the provider works: a later failure starts the round of providers afresh
            self._arm_final_timer()
        elif event.type is SpeechEventType.INTERIM_TRANSCRIPT:
            self._finalised_early = False  # words after that final: a final is owed again
        elif event.type in _BOUNDARIES:
            starting = event.type is SpeechEventType.START_OF_SPEECH
            if self._quiet or starting == self._in_speech:
                return  # the replayed speech's boundaries, or a repeat: the reader has them
            self._in_speech = starting
        self.send(event)

    async def aclose(self) -> None:
        """Stop relaying and close the provider's stream. Idempotent."""
        inner = self._inner
        self._cancel_final_timer()
        await super().aclose()  # cancels the relay, which closes the provider's stream
        if inner is not None:
            await inner.aclose()
