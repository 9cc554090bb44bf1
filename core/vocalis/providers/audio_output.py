"""The agent-audio side of a transport, with a playout timeline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from vocalis.audio import AudioFrame


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
    queued) but keeps the segment's audio, so :meth:`resume` can replay it
    from the exact position where the user stopped hearing it.
    """

    def __init__(self) -> None:
        self._segment_start: float | None = None
        self._frames: list[AudioFrame] = []
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
        """Queue one frame of agent audio for playout."""
        now = asyncio.get_running_loop().time()
        if self._segment_start is None:
            self._segment_start = now
            self._frames = []
            self._pushed = self._delivered = 0.0
            self._play_end = now
            self._flushed = False
        self._frames.append(frame)
        self._pushed += frame.duration
        if self._paused_at is not None:
            return
        self._timeline_deliver(frame, now)

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
        offset = 0.0
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
        self._frames = []
        self._flushed = False
        self._last_result = result
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(result)
