"""Audio between aiortc and Vocalis: decoded browser audio in, paced agent audio out.

aiortc decodes the browser's Opus track to ``av.AudioFrame`` objects (48 kHz,
usually stereo); :class:`InboundAudio` turns them into the int16 mono
:class:`~vocalis.audio.AudioFrame` the session takes. Agent audio goes the
other way through :class:`AgentAudioTrack`, an outbound track that aiortc's
sender pulls one 20 ms frame at a time: it plays what the session delivered
and silence in between, in real time.
"""

from __future__ import annotations

import asyncio
import fractions
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from vocalis.audio import AudioFrame, AudioResampler
from vocalis.providers.audio_output import AudioOutput

OPUS_RATE = 48_000
"""WebRTC's Opus runs at 48 kHz; sending that rate spares the encoder a resample."""

FRAME_SECONDS = 0.02
# If the event loop stalls for longer than this, restart the clock instead of
# sending a burst of frames to catch up (the browser would only drop them).
_MAX_LAG = 0.2
# Audio the track may hold beyond what the session's playout clock still
# expects to play (jitter of the sender's pulls); more is a stalled sender.
_BEHIND_SLACK = 1.0


class InboundAudio:
    """Converts decoded remote frames to int16 mono Vocalis frames.

    A PyAV resampler does the format work (planar or packed, float or int,
    any channel layout) in C; the rate is kept, since the pipeline resamples
    to what its models want anyway.
    """

    def __init__(self) -> None:
        self._resampler: Any = None
        self._input: tuple[str, str, int] | None = None

    def convert(self, frame: av.AudioFrame) -> AudioFrame | None:
        """The frame as int16 mono PCM at its own rate (None if empty)."""
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        if frame.format.name == "s16" and frame.layout.name == "mono":
            return self._wrap(frame.to_ndarray().reshape(-1), frame.sample_rate)
        if self._resampler is None or key != self._input:
            # A new stream or a format change mid-stream: a fresh converter.
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=frame.sample_rate)
            self._input = key
        pieces = [out.to_ndarray().reshape(-1) for out in self._resampler.resample(frame)]
        if not pieces:
            return None
        import numpy as np

        return self._wrap(np.concatenate(pieces), frame.sample_rate)

    @staticmethod
    def _wrap(samples: Any, sample_rate: int) -> AudioFrame | None:
        if len(samples) == 0:
            return None
        return AudioFrame(samples.astype("<i2", copy=False).tobytes(), sample_rate, 1)


class AgentAudioTrack(MediaStreamTrack):
    """The agent's voice as an outbound WebRTC audio track.

    aiortc's sender calls :meth:`recv` in a loop; each call waits for the
    next 20 ms tick and returns that much audio from the queue, or silence
    when the queue is empty, so the browser hears a steady stream whose
    timestamps advance in real time.

    Args:
        sample_rate: Rate of the frames produced (Opus runs at 48 kHz).
    """

    kind = "audio"

    def __init__(self, sample_rate: int = OPUS_RATE) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.samples_per_frame = round(sample_rate * FRAME_SECONDS)
        self.time_base = fractions.Fraction(1, sample_rate)
        self._pending = bytearray()  # int16 mono PCM at ``sample_rate``
        self._resampler = AudioResampler(sample_rate)
        self._start: float | None = None
        self._sent = 0  # frames returned so far (they set pts)
        self._clock_frames = 0  # frames since the clock (re)started
        self.frames_with_audio = 0

    @property
    def queued_seconds(self) -> float:
        """Seconds of agent audio waiting to be sent."""
        return len(self._pending) / (2 * self.sample_rate)

    def push(self, frame: AudioFrame) -> None:
        """Queue agent audio (any rate; converted to the track's rate and mono)."""
        converted = self._resampler.push(frame)
        if converted is not None:
            self._pending += converted.data

    def drop_oldest(self, seconds: float) -> None:
        """Forget the oldest ``seconds`` of queued audio (they are overdue)."""
        size = min(len(self._pending), 2 * round(seconds * self.sample_rate))
        del self._pending[:size]

    def drain(self) -> None:
        """Queue what the resampler still holds (call at the end of an utterance)."""
        tail = self._resampler.flush()
        if tail is not None:
            self._pending += tail.data

    def clear(self) -> None:
        """Drop everything queued: the next frame sent is silence."""
        self._pending.clear()
        # The filter's memory belongs to the discarded audio as well.
        self._resampler = AudioResampler(self.sample_rate)

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms of audio, returned on its tick.

        Raises:
            MediaStreamError: The track was stopped.
        """
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._start is None or now - self._due(self._clock_frames) > _MAX_LAG:
            self._start, self._clock_frames = now, 0
        else:
            await asyncio.sleep(max(0.0, self._due(self._clock_frames) - now))
        if self.readyState != "live":
            raise MediaStreamError
        self._clock_frames += 1
        return self._next_frame()

    def _due(self, index: int) -> float:
        assert self._start is not None
        return self._start + index * FRAME_SECONDS

    def _next_frame(self) -> av.AudioFrame:
        size = 2 * self.samples_per_frame
        chunk = bytes(self._pending[:size])
        del self._pending[:size]
        if chunk:
            self.frames_with_audio += 1
        chunk += bytes(size - len(chunk))
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.samples_per_frame)
        frame.planes[0].update(chunk)
        frame.sample_rate = self.sample_rate
        frame.time_base = self.time_base
        frame.pts = self._sent * self.samples_per_frame
        self._sent += 1
        return frame


class TrackAudioOutput(AudioOutput):
    """The session's audio output, feeding an :class:`AgentAudioTrack`.

    The session delivers frames faster than real time; the track paces them.
    :meth:`discard` empties the track's queue, so a barge-in silences the
    agent within one frame. If aiortc stops pulling frames (a stalled
    connection), the track never holds more than the session's playout clock
    still expects to play (plus a second of slack): older audio is dropped,
    so a stall cannot grow memory turn after turn.
    """

    def __init__(self, track: AgentAudioTrack) -> None:
        super().__init__()
        self.track = track

    def deliver(self, frame: AudioFrame) -> None:
        self.track.push(frame)
        overdue = self.track.queued_seconds - self.unplayed - _BEHIND_SLACK
        if overdue > 0:
            self.track.drop_oldest(overdue)

    def discard(self) -> None:
        self.track.clear()

    def flush(self) -> None:
        # The resampler keeps a few milliseconds back for its filter; the
        # utterance is complete, so they go out now rather than before the next.
        self.track.drain()
        super().flush()

    def resume(self) -> None:
        # Resuming re-delivers the rest of the segment at once: drain it too,
        # or its last milliseconds would wait for the next utterance.
        super().resume()
        self.track.drain()
