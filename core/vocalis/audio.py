"""The canonical audio frame and format conversion.

Every provider and transport exchanges :class:`AudioFrame` objects: signed
16-bit little-endian PCM, interleaved when there is more than one channel.
Resampling goes through soxr; nothing here hand-rolls a resampler.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 8
MAX_FRAME_SECONDS = 30.0
"""Frames longer than this are rejected: real-time transports send 10–100 ms."""


class AudioFormatError(ValueError):
    """Audio that cannot be used as given: odd byte counts, bad rates, NaNs."""


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """A chunk of int16 PCM audio.

    Attributes:
        data: Little-endian int16 samples, channels interleaved.
        sample_rate: Samples per second per channel.
        channels: Number of interleaved channels.
    """

    data: bytes
    sample_rate: int
    channels: int = 1
    samples_per_channel: int = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            # bytes(x) would also take an int (that many zero bytes), a str or a
            # list of ints; only buffers hold PCM.
            try:
                view = memoryview(self.data)
            except TypeError:
                raise AudioFormatError(
                    f"audio data must be bytes, bytearray or memoryview, not {type(self.data).__name__}"
                ) from None
            object.__setattr__(self, "data", view.tobytes())
        # numpy integers (e.g. from a WAV reader) are fine as rates and counts.
        for name in ("sample_rate", "channels"):
            value = getattr(self, name)
            if not isinstance(value, (int, bool)) and isinstance(value, numbers.Integral):
                object.__setattr__(self, name, int(value))
            elif isinstance(value, bool) or not isinstance(value, int):
                label = "sample rate" if name == "sample_rate" else "channel count"
                raise AudioFormatError(f"{label} must be an int, not {type(value).__name__} ({_short(value)})")
        if not MIN_SAMPLE_RATE <= self.sample_rate <= MAX_SAMPLE_RATE:
            raise AudioFormatError(
                f"sample rate {_short(self.sample_rate)} Hz is outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz"
            )
        if not 1 <= self.channels <= MAX_CHANNELS:
            raise AudioFormatError(f"channel count {_short(self.channels)} is outside 1..{MAX_CHANNELS}")
        bytes_per_block = 2 * self.channels
        if len(self.data) % bytes_per_block:
            raise AudioFormatError(
                f"{len(self.data)} bytes of PCM is not a whole number of int16 samples for {self.channels} channel(s)"
            )
        samples = len(self.data) // bytes_per_block
        if samples > MAX_FRAME_SECONDS * self.sample_rate:
            raise AudioFormatError(
                f"frame of {samples / self.sample_rate:.1f} s exceeds the "
                f"{MAX_FRAME_SECONDS:.0f} s limit; split it into smaller frames"
            )
        object.__setattr__(self, "samples_per_channel", samples)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples_per_channel / self.sample_rate

    @classmethod
    def silence(cls, duration: float, sample_rate: int = 16_000, channels: int = 1) -> AudioFrame:
        """A frame of digital silence."""
        samples = round(duration * sample_rate)
        return cls(bytes(2 * samples * channels), sample_rate, channels)

    @classmethod
    def from_numpy(cls, samples: npt.ArrayLike, sample_rate: int, channels: int | None = None) -> AudioFrame:
        """Build a frame from an int16 or float array.

        Float input is taken as -1.0..1.0 and clipped; NaN or infinite values
        are rejected. A 2-D array is ``(samples, channels)``.

        Raises:
            AudioFormatError: NaN/inf values or an unsupported dtype.
        """
        import numpy as np

        array = np.asarray(samples)
        if array.ndim == 2:
            if channels is not None and channels != array.shape[1]:
                raise AudioFormatError(
                    f"channels={_short(channels)} does not match the array's "
                    f"{array.shape[1]} columns (samples, channels)"
                )
            channels = array.shape[1]
            if channels == 0:
                raise AudioFormatError("a 2-D sample array needs at least one channel column")
        elif array.ndim != 1:
            raise AudioFormatError(f"expected 1-D or 2-D samples, got {array.ndim}-D")
        if array.dtype.kind == "f":
            if not np.isfinite(array).all():
                raise AudioFormatError("audio contains NaN or infinite samples")
            array = (np.clip(array, -1.0, 1.0) * 32767.0).round().astype("<i2")
        elif array.dtype.kind in "iu":
            array = np.clip(array, -32768, 32767).astype("<i2", copy=False)
        else:
            raise AudioFormatError(f"unsupported sample dtype {array.dtype}")
        return cls(array.tobytes(), sample_rate, 1 if channels is None else channels)

    def to_numpy(self) -> np.ndarray[Any, np.dtype[np.int16]]:
        """Samples as int16, shape ``(samples,)`` or ``(samples, channels)``."""
        import numpy as np

        array = np.frombuffer(self.data, dtype="<i2")
        return array.reshape(-1, self.channels) if self.channels > 1 else array

    def slice_from(self, seconds: float) -> AudioFrame:
        """The part of the frame after ``seconds`` (an empty frame past the end)."""
        start = min(self.samples_per_channel, max(0, round(seconds * self.sample_rate)))
        return AudioFrame(self.data[start * 2 * self.channels :], self.sample_rate, self.channels)

    def to_mono(self) -> AudioFrame:
        """Average the channels into one."""
        if self.channels == 1:
            return self
        mixed = self.to_numpy().mean(axis=1)
        return AudioFrame.from_numpy(mixed.round().astype("int16"), self.sample_rate)

    def __repr__(self) -> str:
        return f"AudioFrame({self.duration * 1000:.1f} ms, {self.sample_rate} Hz, {self.channels} ch)"


def resample(frame: AudioFrame, sample_rate: int) -> AudioFrame:
    """Resample a whole frame with soxr (for one-off conversions).

    For a continuous stream use :class:`AudioResampler`, which keeps filter
    state across frames and so avoids clicks at frame edges.
    """
    if frame.sample_rate == sample_rate:
        return frame
    import soxr

    out = soxr.resample(frame.to_numpy(), frame.sample_rate, sample_rate, quality="HQ")
    return AudioFrame.from_numpy(out, sample_rate, frame.channels)


class AudioResampler:
    """Streaming conversion to one rate and channel count, created lazily.

    Frames already in the target format pass through untouched and cost
    nothing; a soxr stream is created for the first frame that needs one and
    re-created if the input rate changes mid-stream (the old one is drained
    first, so no audio is lost at the switch).

    Args:
        sample_rate: The output rate.
        channels: The output channel count (1 mixes down; more is not
            upmixed).
    """

    def __init__(self, sample_rate: int, channels: int = 1) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self._stream: Any = None
        self._input: tuple[int, int] | None = None  # (rate, channels) the stream was built for

    def push(self, frame: AudioFrame) -> AudioFrame | None:
        """Convert one frame; returns None while the filter is still filling."""
        if self.channels == 1 and frame.channels != 1:
            frame = frame.to_mono()
        tail = None
        if self._stream is not None and self._input != (frame.sample_rate, frame.channels):
            # The input format changed: drain the old stream so its last samples are not lost.
            tail = self.flush()
            if tail is not None and tail.channels != frame.channels:
                # Channels changed too: convert the tail rather than drop it.
                tail = _with_channels(tail, frame.channels)
        if frame.sample_rate == self.sample_rate:
            return frame if tail is None else concat([tail, frame])
        if self._stream is None:
            import soxr

            self._stream = soxr.ResampleStream(
                frame.sample_rate, self.sample_rate, frame.channels, dtype="int16", quality="HQ"
            )
            self._input = (frame.sample_rate, frame.channels)
        out = self._stream.resample_chunk(frame.to_numpy())
        converted = (
            AudioFrame(out.astype("<i2", copy=False).tobytes(), self.sample_rate, frame.channels) if len(out) else None
        )
        if tail is None:
            return converted
        return tail if converted is None else concat([tail, converted])

    def flush(self) -> AudioFrame | None:
        """Drain what the filter still holds at the end of a stream."""
        if self._stream is None or self._input is None:
            return None
        channels = self._input[1]
        out = self._stream.resample_chunk(_empty(channels), last=True)
        self._stream = None
        self._input = None
        if len(out) == 0:
            return None
        return AudioFrame(out.astype("<i2", copy=False).tobytes(), self.sample_rate, channels)


def _short(value: object) -> str:
    """``repr`` cut short: a bad value from a client may be huge."""
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4300 digits has no repr
        return f"<{type(value).__name__} too large to show>"
    return text if len(text) <= 40 else f"{text[:37]}..."


def _with_channels(frame: AudioFrame, channels: int) -> AudioFrame:
    """Mix down to mono, then copy it into ``channels`` channels."""
    import numpy as np

    mono = frame.to_mono().to_numpy()
    if channels == 1:
        return AudioFrame(mono.tobytes(), frame.sample_rate)
    return AudioFrame(np.repeat(mono, channels).tobytes(), frame.sample_rate, channels)


def _empty(channels: int) -> Any:
    import numpy as np

    return np.zeros((0, channels) if channels > 1 else 0, dtype="int16")


def pcm_from_bytes(data: bytes | bytearray | memoryview, sample_rate: int, channels: int = 1) -> AudioFrame:
    """Wrap raw PCM from a transport, with a clear error on bad input."""
    return AudioFrame(bytes(data), sample_rate, channels)


def concat(frames: list[AudioFrame]) -> AudioFrame | None:
    """Join frames of one format into one frame (None for an empty list).

    Raises:
        AudioFormatError: The frames differ in rate or channel count.
    """
    if not frames:
        return None
    first = frames[0]
    for frame in frames:
        if (frame.sample_rate, frame.channels) != (first.sample_rate, first.channels):
            raise AudioFormatError("cannot join frames of different formats")
    return AudioFrame(b"".join(f.data for f in frames), first.sample_rate, first.channels)
