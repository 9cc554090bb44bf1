"""Agent audio for a remote player: resampled, cut into fixed chunks, sent at once.

The remote side (Twilio, a custom client) buffers and plays what it gets,
so audio goes out as fast as the TTS makes it; the session keeps its own
playout clock (see :class:`~vocalis.providers.audio_output.AudioOutput`).
Subclasses say how a chunk, a "clear" and the end of a segment are sent.
"""

from __future__ import annotations

from vocalis.audio import AudioFrame, AudioResampler
from vocalis.providers.audio_output import AudioOutput


class ChunkedAudioOutput(AudioOutput):
    """Converts agent audio to one rate and hands it on in equal chunks.

    A segment's last, shorter chunk goes out when the segment is complete
    (:meth:`flush`), followed by :meth:`send_segment_end`. :meth:`discard`
    (barge-in, pause) drops what is buffered here and calls
    :meth:`send_clear` so the remote side drops what it has queued.

    Args:
        sample_rate: The rate the remote side plays.
        chunk_seconds: Length of each chunk (20 ms is the telephony norm).
    """

    def __init__(self, sample_rate: int, chunk_seconds: float = 0.02) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.chunk_bytes = 2 * max(1, round(sample_rate * chunk_seconds))
        self._resampler = AudioResampler(sample_rate)
        self._pending = bytearray()
        self._complete = False  # the current segment was flushed: its end may be sent
        self.chunks_out = 0
        self.clears = 0

    # -- to implement -------------------------------------------------------
    def send_chunk(self, pcm: bytes) -> None:
        """Send one chunk of 16-bit mono PCM at :attr:`sample_rate`."""

    def send_clear(self) -> None:
        """Tell the remote side to drop the audio it has not played."""

    def send_segment_end(self) -> None:
        """Called after a segment's last chunk was handed to :meth:`send_chunk`."""

    # -- AudioOutput --------------------------------------------------------
    async def capture_frame(self, frame: AudioFrame) -> None:
        if not self.speaking:
            self._complete = False  # a new segment begins
        await super().capture_frame(frame)

    def deliver(self, frame: AudioFrame) -> None:
        converted = self._resampler.push(frame)
        if converted is not None:
            self._pending += converted.data
            self._send_full_chunks()

    def discard(self) -> None:
        # The resampler holds the tail of the dropped audio: start afresh.
        self._resampler = AudioResampler(self.sample_rate)
        self._pending.clear()
        self.clears += 1
        self.send_clear()

    def flush(self) -> None:
        super().flush()
        if self.speaking:
            self._complete = True
            if not self.paused:
                self._finish_segment()

    def resume(self) -> None:
        was_paused = self.paused
        super().resume()
        # Resuming re-sent the rest of the segment; if it was complete, end it again.
        if was_paused and self._complete and self.speaking:
            self._finish_segment()

    def clear_buffer(self) -> float:
        self._complete = False
        return super().clear_buffer()

    # -- internals ----------------------------------------------------------
    def _send_full_chunks(self) -> None:
        size = self.chunk_bytes
        while len(self._pending) >= size:
            self._emit(bytes(self._pending[:size]))
            del self._pending[:size]

    def _emit(self, pcm: bytes) -> None:
        self.chunks_out += 1
        self.send_chunk(pcm)

    def _finish_segment(self) -> None:
        tail = self._resampler.flush()
        if tail is not None:
            self._pending += tail.data
        self._send_full_chunks()
        if self._pending:
            self._emit(bytes(self._pending))
            self._pending.clear()
        self.send_segment_end()
