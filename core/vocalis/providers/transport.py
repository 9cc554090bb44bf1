"""Transport contract: how user audio gets in and agent audio gets out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from vocalis.audio import AudioFrame
from vocalis.providers.base import Provider, ProviderKind


class AudioSink(Protocol):
    """What a transport feeds user audio into (the session)."""

    def push_audio(self, frame: AudioFrame) -> None:
        """Hand over one frame of user audio."""
        ...


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
    """The agent-audio side of a transport, with a playout timeline.

    The base class models playout in real time on the event loop's clock:
    frames play back to back from when the first one arrives, so the session
    knows how much the user heard when it is interrupted and when playback
    ends. Subclasses implement :meth:`deliver` (hand a frame to the device or
    the network) and :meth:`discard` (drop what is queued there). One timer
    per segment, not per frame, keeps idle and speaking sessions cheap.
    """

    def __init__(self) -> None:
        self._segment_start: float | None = None
        self._pushed = 0.0
        self._play_end = 0.0
        self._flushed = False
        self._waiter: asyncio.Future[PlaybackResult] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_result = PlaybackResult(0.0, interrupted=False)
        self.frames_out = 0

    # -- to implement -----------------------------------------------------
    def deliver(self, frame: AudioFrame) -> None:
        """Send a frame on (called in order, as soon as it is captured)."""

    def discard(self) -> None:
        """Drop audio that was delivered but has not played yet."""

    # -- used by the session ----------------------------------------------
    @property
    def speaking(self) -> bool:
        """Whether a segment is playing or queued."""
        return self._segment_start is not None

    async def capture_frame(self, frame: AudioFrame) -> None:
        """Queue one frame of agent audio for playout."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._segment_start is None:
            self._segment_start = now
            self._pushed = 0.0
            self._play_end = now
            self._flushed = False
        self._play_end = max(self._play_end, now) + frame.duration
        self._pushed += frame.duration
        self.frames_out += 1
        self.deliver(frame)

    def flush(self) -> None:
        """The segment is complete: playout ends when its last frame has played."""
        self._flushed = True
        if self._segment_start is not None:
            self._schedule()

    def clear_buffer(self) -> float:
        """Stop now: drop queued audio and end the segment as interrupted.

        Returns:
            Seconds of the segment that were played.
        """
        if self._segment_start is None:
            return 0.0
        position = self._position()
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

    def _position(self) -> float:
        if self._segment_start is None:
            return 0.0
        now = asyncio.get_running_loop().time()
        # Everything pushed minus what is still queued; unlike ``now - start``
        # this does not count gaps (underruns) between frames as heard.
        return max(0.0, self._pushed - max(0.0, self._play_end - now))

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(self._play_end, self._check_done)

    def _check_done(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        if loop.time() + 1e-9 >= self._play_end:
            self._end(PlaybackResult(self._pushed, interrupted=False))
        else:
            self._schedule()

    def _end(self, result: PlaybackResult) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._segment_start = None
        self._flushed = False
        self._last_result = result
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(result)


class Transport(Provider):
    """Base class of transports (a browser connection, a phone call, files).

    Attributes:
        audio_output: Where the session writes agent audio.
    """

    kind: ClassVar[ProviderKind] = ProviderKind.TRANSPORT

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.audio_output = AudioOutput()

    async def start(self, sink: AudioSink) -> None:
        """Begin delivering user audio to ``sink.push_audio``."""

    def send_event(self, event: str, payload: dict[str, Any]) -> None:
        """Forward a session event to the remote side (transcripts, states)."""
