"""The agent-audio side of a transport, with a playout timeline."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

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

    async def _wait_for_room(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Wait until less than ``max_ahead`` is queued; False if the segment ended meanwhile.

        One frame waits at most ``_MAX_WAIT``: a frame is then at most that late, well
        inside ``ProviderTimeouts.audio_output`` (frames longer than it loosen the bound).
        """
        segment = self._segment
        give_up = loop.time() + _MAX_WAIT
        while (
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
        self._segment_start = None
        self._paused_at = None
        self._frames = deque()
        self._kept_from = 0.0
        self._flushed = False
        self._last_result = result
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(result)
