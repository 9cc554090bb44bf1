"""The agent-audio side of a transport, with a playout timeline."""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

from vocalis.audio import AudioFrame

_MAX_WAIT = 2.0  # seconds one frame may wait for room (see AudioOutput.max_ahead)


@dataclass(slots=True)
class PlaybackResult:
    """How a segment of agent audio ended.

    Attributes:
        position: Seconds of the segment the user heard.
        interrupted: Whether it was cut off by :meth:`AudioOutput.clear_buffer`.
    """

    position: float
    interrupted: bool


class AudioOutput:
    """Agent audio out, with a playout timeline, pause and resume.

    The base class models playout in real time on the event loop's clock:
    frames play back to back from when the first one arrives, so the session
    knows how much the user heard when it is interrupted and when playback
    ends. Subclasses implement :meth:`deliver` (hand a frame to the device or
    the network) and :meth:`discard` (drop what is queued there). One timer
    per segment, not per frame, keeps idle and speaking sessions cheap.

    :meth:`pause` stops the sound at once (it discards what the device has
    queued) but keeps the segment's audio not heard yet, so :meth:`resume`
    can replay it from the exact position where the user stopped hearing it.

    :meth:`add_mark` puts a mark at an offset of the segment: its callback
    runs when playout reaches it (a pause holds it back, resume lets it go)
    and never for audio cleared before it was heard, like the "mark"
    messages of telephony media streams. The session announces each
    sentence (``on_speech_out``) with one.

    Memory stays bounded: frames already heard are let go, and with
    :attr:`max_ahead` set, :meth:`capture_frame` waits while that many
    seconds are queued ahead of playout, so a TTS faster than real time
    (or a long reply) never piles up more than that here or downstream.

    Attributes:
        max_ahead: Seconds of audio that may be queued ahead of playout
            before :meth:`capture_frame` waits (``None``: no limit). The
            session sets it from ``SessionLimits.max_agent_audio_ahead``.
    """

    max_ahead: float | None = None

    def __init__(self) -> None:
        self._segment_start: float | None = None
        self._segment = 0  # counts segments, so a wait can tell its segment ended
        self._frames: deque[AudioFrame] = deque()  # not yet heard, from ``_kept_from`` on
        self._kept_from = 0.0
        self._pushed = 0.0
        self._delivered = 0.0
        self._play_end = 0.0
        self._paused_at: float | None = None
        self._flushed = False
        self._waiter: asyncio.Future[PlaybackResult] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_result = PlaybackResult(0.0, interrupted=False)
        self._marks: list[tuple[float, int, Callable[[], object]]] = []  # (offset, order, callback)
        self._mark_order = itertools.count()
        self._mark_timer: asyncio.TimerHandle | None = None
        self.frames_out = 0

    # -- to implement -----------------------------------------------------
    def deliver(self, frame: AudioFrame) -> None:
        """Send a frame on (called in order, as soon as it may play)."""

    def discard(self) -> None:
        """Drop audio that was delivered but has not played yet."""

    # -- state ------------------------------------------------------------
    @property
    def speaking(self) -> bool:
        """Whether a segment is playing, paused or queued."""
        return self._segment_start is not None

    @property
    def paused(self) -> bool:
        """Whether the current segment is paused."""
        return self._paused_at is not None

    @property
    def unplayed(self) -> float:
        """Seconds of delivered audio still to play on the timeline (0 when idle or paused)."""
        if self._segment_start is None or self._paused_at is not None:
            return 0.0
        return max(0.0, self._play_end - asyncio.get_running_loop().time())

    @property
    def position(self) -> float:
        """Seconds of the current segment heard so far."""
        if self._segment_start is None:
            return 0.0
        if self._paused_at is not None:
            return self._paused_at
        now = asyncio.get_running_loop().time()
        # Everything delivered minus what is still queued; unlike ``now - start``
        # this does not count gaps (underruns) between frames as heard.
        return max(0.0, self._delivered - max(0.0, self._play_end - now))

    # -- used by the session ----------------------------------------------
    async def capture_frame(self, frame: AudioFrame) -> None:
        """Queue one frame of agent audio for playout.

        With :attr:`max_ahead` set this waits while the queue is full (about
        a frame's duration); a frame whose segment was cleared meanwhile is
        dropped.
        """
        loop = asyncio.get_running_loop()
        if self._segment_start is not None and not await self._wait_for_room(loop):
            return
        now = loop.time()
        if self._segment_start is None:
            self._segment_start = now
            self._segment += 1
            self._frames = deque()
            self._kept_from = 0.0
            self._pushed = self._delivered = 0.0
            self._play_end = now
            self._flushed = False
        self._frames.append(frame)
        self._pushed += frame.duration
        if self._paused_at is not None:
            return
        self._timeline_deliver(frame, now)
        self._forget_heard(self._delivered - max(0.0, self._play_end - now))
        if self._marks and self._mark_timer is None:
            self._arm_marks()

    async def _wait_for_room(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Wait until less than ``max_ahead`` is queued; False if the segment ended meanwhile.

        One frame waits at most ``_MAX_WAIT``: a frame is then at most that late, well
        inside ``ProviderTimeouts.audio_output`` (frames longer than it loosen the bound).
        """
        segment = self._segment
        give_up = loop.time() + _MAX_WAIT
        while (  # noqa: ASYNC110
            self.max_ahead is not None
            and self._segment == segment
            and self._segment_start is not None
            and self._paused_at is None
            and self._play_end - loop.time() > self.max_ahead + 1e-6
            and loop.time() < give_up
        ):
            # At least a millisecond, so float rounding can never spin this loop.
            await asyncio.sleep(max(0.001, min(self._play_end - self.max_ahead, give_up) - loop.time()))
        return self._segment == segment and self._segment_start is not None

    def _forget_heard(self, position: float) -> None:
        """Let go of frames played entirely before ``position`` (resume never needs them)."""
        frames = self._frames
        while len(frames) > 1 and self._kept_from + frames[0].duration <= position - 1e-9:
            self._kept_from += frames.popleft().duration

    def _timeline_deliver(self, frame: AudioFrame, now: float) -> None:
        self._play_end = max(self._play_end, now) + frame.duration
        self._delivered += frame.duration
        self.frames_out += 1
        self.deliver(frame)

    def flush(self) -> None:
        """The segment is complete: playout ends when its last frame has played."""
        self._flushed = True
        if self._segment_start is not None and self._paused_at is None:
            self._schedule()

    def pause(self) -> float:
        """Stop the sound now, keeping the rest of the segment for :meth:`resume`.

        Returns:
            Seconds of the segment heard so far.
        """
        if self._segment_start is None or self._paused_at is not None:
            return self.position
        position = self.position
        self._paused_at = position
        self.discard()
        self._cancel_timer()
        self._cancel_mark_timer()  # marks wait for resume()
        return position

    def resume(self) -> None:
        """Continue a paused segment from where the user stopped hearing it."""
        if self._paused_at is None:
            return
        position, self._paused_at = self._paused_at, None
        now = asyncio.get_running_loop().time()
        self._play_end = now
        self._delivered = position
        offset = self._kept_from
        for frame in self._frames:
            end = offset + frame.duration
            if end > position + 1e-9:
                self._timeline_deliver(frame if offset >= position else frame.slice_from(position - offset), now)
            offset = end
        self._delivered = self._pushed
        if self._flushed:
            self._schedule()
        self._arm_marks()

    def clear_buffer(self) -> float:
        """Stop now: drop queued audio and end the segment as interrupted.

        Returns:
            Seconds of the segment that were played.
        """
        if self._segment_start is None:
            return 0.0
        position = self.position
        self.discard()
        self._end(PlaybackResult(position, interrupted=True))
        return position

    def add_mark(self, at: float, callback: Callable[[], object]) -> bool:
        """Run ``callback`` when playout of the current segment reaches ``at``.

        The mark follows what is played, not what is queued: it fires when
        the audio before ``at`` has played (right away, on the next turn of
        the loop, if it already has), a :meth:`pause` holds it back until
        :meth:`resume`, and :meth:`clear_buffer` drops it unless playout had
        passed it. Marks fire in the order of their offsets.

        Args:
            at: Seconds from the start of the current segment.
            callback: Called with no arguments, on the event loop.

        Returns:
            False when no segment is playing (the callback will never run).
        """
        if self._segment_start is None:
            return False
        bisect.insort(self._marks, (at, next(self._mark_order), callback), key=lambda mark: mark[:2])
        if self._marks[0][2] is callback or self._mark_timer is None:
            self._cancel_mark_timer()
            self._arm_marks()
        return True

    async def wait_for_playout(self) -> PlaybackResult:
        """Wait until the flushed segment has played (or was cleared)."""
        if self._segment_start is None:
            return self._last_result
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        return await asyncio.shield(self._waiter)

    # -- timeline -----------------------------------------------------------
    def _schedule(self) -> None:
        self._cancel_timer()
        self._timer = asyncio.get_running_loop().call_at(self._play_end, self._check_done)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _cancel_mark_timer(self) -> None:
        if self._mark_timer is not None:
            self._mark_timer.cancel()
            self._mark_timer = None

    def _arm_marks(self) -> None:
        """One timer, for the next mark, once the audio up to it is on the timeline."""
        if self._mark_timer is not None or not self._marks:
            return
        if self._segment_start is None or self._paused_at is not None:
            return
        at = self._marks[0][0]
        if at > self._delivered + 1e-9:
            return  # not delivered yet: armed again when it is
        loop = asyncio.get_running_loop()
        # Delivered audio plays back to back from now on, so the offset is
        # reached this long before the end of what is queued.
        when = max(loop.time(), self._play_end - (self._delivered - at))
        self._mark_timer = loop.call_at(when, self._on_mark_time)

    def _on_mark_time(self) -> None:
        self._mark_timer = None
        if self._paused_at is None:
            self._fire_marks(self.position + 1e-9)
        self._arm_marks()

    def _fire_marks(self, reached: float) -> None:
        """Run the callbacks of the marks before ``reached``, in order."""
        due: list[Callable[[], object]] = []
        while self._marks and self._marks[0][0] < reached:
            due.append(self._marks.pop(0)[2])
        _run_marks(due)

    def _check_done(self) -> None:
        self._timer = None
        if self._paused_at is not None:
            return
        if asyncio.get_running_loop().time() + 1e-9 >= self._play_end:
            self._end(PlaybackResult(self._pushed, interrupted=False))
        else:
            self._schedule()

    def _end(self, result: PlaybackResult) -> None:
        self._cancel_timer()
        self._cancel_mark_timer()
        # Marks playout has passed fire (played out: all of them); the rest never will.
        reached = result.position + (0.0 if result.interrupted else 1e-9)
        due = [callback for at, _, callback in self._marks if at < reached]
        self._marks = []
        self._segment_start = None
        self._paused_at = None
        self._frames = deque()
        self._kept_from = 0.0
        self._flushed = False
        self._last_result = result
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(result)
        _run_marks(due)


def _run_marks(callbacks: list[Callable[[], object]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:
            logger.exception("an audio output mark's callback failed")
