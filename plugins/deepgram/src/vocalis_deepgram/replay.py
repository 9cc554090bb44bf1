"""The audio of a live stream that no final result covers yet.

Deepgram acknowledges audio only through its results: an ``is_final``
result with ``start`` and ``duration`` says everything up to
``start + duration`` (on that connection's clock) is transcribed for good.
Audio after that point may still be in flight or in Deepgram's buffer, and a
dropped connection loses it. The journal keeps it so the next connection can
be sent exactly that audio again: the words already final are not
transcribed twice, and the words not yet final are not lost.
"""

from __future__ import annotations

from collections import deque

from loguru import logger


class AudioJournal:
    """PCM pushed into a stream, minus what final results have covered.

    Args:
        sample_rate: Rate of the PCM (16-bit).
        channels: Channels of the PCM.
        max_seconds: Audio kept at most; beyond it the oldest is dropped (a
            connection that never finalises must not grow memory forever).
        label: The provider's label, for the log.

    """

    def __init__(self, sample_rate: int, channels: int, max_seconds: float, label: str = "") -> None:
        self._block = 2 * channels
        self._bytes_per_second = sample_rate * self._block
        self._max_bytes = int(max_seconds * sample_rate) * self._block
        self._label = label
        self._chunks: deque[bytes] = deque()
        self._bytes = 0  # held now
        self._dropped = 0  # bytes before the first held one (acknowledged or dropped)
        self._warned = False
        self._total = 0  # bytes ever added

    @property
    def start(self) -> float:
        """Stream seconds of the oldest audio held (``end`` when none is)."""
        return self._dropped / self._bytes_per_second

    @property
    def end(self) -> float:
        """Stream seconds of all audio ever added."""
        return self._total / self._bytes_per_second

    @property
    def seconds(self) -> float:
        """Seconds of audio held."""
        return self._bytes / self._bytes_per_second

    def add(self, data: bytes) -> None:
        """Keep ``data`` (whole samples) until a final result covers it."""
        self._chunks.append(data)
        self._bytes += len(data)
        self._total += len(data)
        over = self._bytes - self._max_bytes
        if over > 0:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "{}: more than {:.0f} s of audio without a final result; the oldest will not be resent",
                    self._label,
                    self._max_bytes / self._bytes_per_second,
                )
            self._drop(over)

    def ack(self, until: float) -> None:
        """Forget the audio before stream second ``until`` (a final result covers it)."""
        self._drop(int(until * self._bytes_per_second) - self._dropped)
        if self._bytes < self._max_bytes // 2:
            self._warned = False

    def chunks(self) -> list[tuple[float, bytes]]:
        """The audio held, as ``(stream seconds it starts at, PCM)`` in order."""
        out: list[tuple[float, bytes]] = []
        position = self._dropped
        for chunk in self._chunks:
            out.append((position / self._bytes_per_second, chunk))
            position += len(chunk)
        return out

    def _drop(self, count: int) -> None:
        count -= count % self._block  # whole samples of every channel
        while count > 0 and self._chunks:
            chunk = self._chunks[0]
            if len(chunk) <= count:
                self._chunks.popleft()
                taken = len(chunk)
            else:
                self._chunks[0] = chunk[count:]
                taken = count
            self._bytes -= taken
            self._dropped += taken
            count -= taken
