"""Tests for ``vocalis.audio``: the canonical frame, conversions and resampling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vocalis.audio import (
    AudioFormatError,
    AudioFrame,
    AudioResampler,
    concat,
    pcm_from_bytes,
    resample,
)


def _sine(frequency: float, duration: float, sample_rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(duration * sample_rate)) / sample_rate
    return amplitude * np.sin(2 * math.pi * frequency * t)


def _peak_hz(samples: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.argmax(spectrum) * sample_rate / len(samples))


def _stream(resampler: AudioResampler, frames: list[AudioFrame]) -> list[AudioFrame]:
    out = [resampler.push(frame) for frame in frames]
    out.append(resampler.flush())
    return [frame for frame in out if frame is not None]


# -- validation ------------------------------------------------------------------


def test_format_error_is_a_value_error() -> None:
    """Callers catching ValueError also catch bad audio."""
    assert issubclass(AudioFormatError, ValueError)


@pytest.mark.parametrize(("data", "channels"), [(b"\x00", 1), (b"\x00" * 3, 1), (b"\x00" * 6, 2), (b"\x00" * 2, 2)])
def test_partial_samples_are_rejected(data: bytes, channels: int) -> None:
    """Byte counts that are not whole int16 samples for every channel are refused."""
    with pytest.raises(AudioFormatError, match="whole number"):
        AudioFrame(data, 16_000, channels)


@pytest.mark.parametrize("rate", [0, -16_000, 7_999, 192_001, 16_000.0, "16000"])
def test_bad_sample_rates_are_rejected(rate: object) -> None:
    """Rates outside 8 kHz..192 kHz, and non-int rates, are refused."""
    with pytest.raises(AudioFormatError, match="sample rate"):
        AudioFrame(b"\x00\x00", rate)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [8_000, 192_000])
def test_rate_limits_are_inclusive(rate: int) -> None:
    """The extreme supported rates are accepted."""
    assert AudioFrame(b"\x00\x00", rate).sample_rate == rate


@pytest.mark.parametrize("channels", [0, -1, 9, 1.0])
def test_bad_channel_counts_are_rejected(channels: object) -> None:
    """Channel counts outside 1..8 (or not ints) are refused."""
    with pytest.raises(AudioFormatError, match="channel count"):
        AudioFrame(b"\x00" * 16, 16_000, channels)  # type: ignore[arg-type]


def test_thirty_seconds_is_the_limit() -> None:
    """Exactly 30 s is accepted; one more sample is refused with a hint to split."""
    assert AudioFrame(bytes(2 * 30 * 8_000), 8_000).duration == 30.0
    with pytest.raises(AudioFormatError, match="split it"):
        AudioFrame(bytes(2 * (30 * 8_000 + 1)), 8_000)
    with pytest.raises(AudioFormatError):
        AudioFrame(bytes(2 * 2 * (30 * 8_000 + 1)), 8_000, 2)


@pytest.mark.parametrize("wrap", [bytearray, memoryview])
def test_buffer_inputs_are_copied_to_bytes(wrap: type) -> None:
    """bytearray/memoryview data is stored as immutable bytes with the same content."""
    raw = bytearray(b"\x01\x00\xff\x7f")
    frame = AudioFrame(wrap(raw), 16_000)
    assert type(frame.data) is bytes
    raw[0] = 9  # later changes to the caller's buffer do not leak in
    assert frame.data == b"\x01\x00\xff\x7f"
    assert frame.to_numpy().tolist() == [1, 32767]


def test_pcm_from_bytes_wraps_and_validates() -> None:
    """Transport bytes become a frame, and bad lengths raise AudioFormatError."""
    frame = pcm_from_bytes(memoryview(b"\x00" * 640), 16_000, 2)
    assert (frame.channels, frame.samples_per_channel) == (2, 160)
    with pytest.raises(AudioFormatError):
        pcm_from_bytes(bytearray(b"\x00" * 3), 16_000)


def test_frame_is_immutable() -> None:
    """Frames are shared between tasks, so they cannot be modified."""
    frame = AudioFrame(b"\x00\x00", 16_000)
    with pytest.raises(AttributeError):
        frame.sample_rate = 8_000  # type: ignore[misc]


# -- duration and silence ---------------------------------------------------------


@pytest.mark.parametrize(
    ("nbytes", "rate", "channels", "duration"),
    [(320, 16_000, 1, 0.01), (640, 16_000, 2, 0.01), (960, 48_000, 1, 0.01), (0, 16_000, 1, 0.0)],
)
def test_duration_counts_samples_per_channel(nbytes: int, rate: int, channels: int, duration: float) -> None:
    """Duration is samples per channel over the rate, independent of channel count."""
    frame = AudioFrame(bytes(nbytes), rate, channels)
    assert frame.samples_per_channel == nbytes // (2 * channels)
    assert frame.duration == pytest.approx(duration)


def test_silence_has_the_requested_shape() -> None:
    """silence() produces zeros of the right length, rate and channel count."""
    frame = AudioFrame.silence(0.02, 48_000, channels=2)
    assert (frame.sample_rate, frame.channels, frame.samples_per_channel) == (48_000, 2, 960)
    assert frame.data == bytes(960 * 2 * 2)
    assert AudioFrame.silence(0.5).sample_rate == 16_000


# -- numpy conversion --------------------------------------------------------------


def test_from_numpy_float_scales_and_clips() -> None:
    """Floats map -1..1 to ±32767 and values outside are clipped, not wrapped."""
    frame = AudioFrame.from_numpy(np.array([0.0, 1.0, -1.0, 0.25, 2.0, -7.5]), 16_000)
    assert frame.to_numpy().tolist() == [0, 32767, -32767, 8192, 32767, -32767]


def test_from_numpy_float32_is_accepted() -> None:
    """float32 (what most ML models produce) converts like float64."""
    frame = AudioFrame.from_numpy(np.array([0.5, -0.5], dtype=np.float32), 16_000)
    assert frame.to_numpy().tolist() == [16384, -16384]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_from_numpy_rejects_non_finite(bad: float) -> None:
    """NaN or infinite samples raise instead of becoming garbage PCM."""
    with pytest.raises(AudioFormatError, match="NaN or infinite"):
        AudioFrame.from_numpy(np.array([0.0, bad, 0.1]), 16_000)


def test_from_numpy_int_clips_to_int16() -> None:
    """Wider ints are saturated to the int16 range."""
    frame = AudioFrame.from_numpy(np.array([40_000, -40_000, 123, -1], dtype=np.int32), 16_000)
    assert frame.to_numpy().tolist() == [32767, -32768, 123, -1]


def test_from_numpy_int16_round_trips() -> None:
    """int16 samples survive from_numpy → to_numpy unchanged."""
    samples = np.array([-32768, -1, 0, 1, 32767], dtype=np.int16)
    assert np.array_equal(AudioFrame.from_numpy(samples, 8_000).to_numpy(), samples)


def test_from_numpy_2d_is_samples_by_channels() -> None:
    """A (samples, channels) array gives an interleaved frame with that channel count."""
    samples = np.array([[1, 2], [3, 4], [5, 6]], dtype=np.int16)
    frame = AudioFrame.from_numpy(samples, 16_000)
    assert (frame.channels, frame.samples_per_channel) == (2, 3)
    assert np.frombuffer(frame.data, dtype="<i2").tolist() == [1, 2, 3, 4, 5, 6]
    assert frame.to_numpy().shape == (3, 2)
    assert np.array_equal(frame.to_numpy(), samples)


def test_from_numpy_rejects_bad_shapes_and_dtypes() -> None:
    """3-D arrays and non-numeric dtypes are refused."""
    with pytest.raises(AudioFormatError, match="3-D"):
        AudioFrame.from_numpy(np.zeros((2, 2, 2)), 16_000)
    with pytest.raises(AudioFormatError, match="dtype"):
        AudioFrame.from_numpy(np.array([1 + 1j, 0j]), 16_000)
    with pytest.raises(AudioFormatError, match="dtype"):
        AudioFrame.from_numpy(np.array([True, False]), 16_000)


def test_to_mono_averages_channels() -> None:
    """Stereo is mixed down by averaging; a mono frame is returned as is."""
    samples = np.array([[100, 300], [200, -200], [-5, -6]], dtype=np.int16)
    stereo = AudioFrame.from_numpy(samples, 22_050)
    mono = stereo.to_mono()
    assert (mono.channels, mono.sample_rate) == (1, 22_050)
    assert mono.to_numpy().tolist() == [200, 0, -6]
    frame = AudioFrame.silence(0.01)
    assert frame.to_mono() is frame


# -- one-shot resampling ----------------------------------------------------------


def test_resample_keeps_frequency_and_length_ratio() -> None:
    """A 1 kHz tone at 48 kHz resampled to 16 kHz is still 1 kHz and a third as long."""
    source = AudioFrame.from_numpy(_sine(1_000, 1.0, 48_000), 48_000)
    out = resample(source, 16_000)
    assert out.sample_rate == 16_000
    assert out.samples_per_channel == 16_000
    samples = out.to_numpy()
    assert _peak_hz(samples, 16_000) == pytest.approx(1_000, abs=1)
    # amplitude is preserved (the tone is well inside the passband)
    assert np.abs(samples[1000:-1000]).max() == pytest.approx(0.5 * 32767, rel=0.02)


def test_resample_upsamples_stereo() -> None:
    """Upsampling keeps both channels and each channel's own content."""
    left = _sine(500, 0.5, 16_000)
    stereo = AudioFrame.from_numpy(np.stack([left, np.zeros_like(left)], axis=1), 16_000)
    out = resample(stereo, 48_000)
    assert (out.channels, out.samples_per_channel) == (2, 24_000)
    samples = out.to_numpy()
    assert _peak_hz(samples[:, 0], 48_000) == pytest.approx(500, abs=2)
    assert np.abs(samples[:, 1]).max() <= 1


def test_resample_same_rate_is_identity() -> None:
    """No conversion (and no copy) when the rate already matches."""
    frame = AudioFrame.silence(0.01, 24_000)
    assert resample(frame, 24_000) is frame


# -- streaming resampler -------------------------------------------------------------


def test_resampler_passes_matching_frames_through() -> None:
    """Frames already at the target rate and channel count are returned unchanged."""
    resampler = AudioResampler(16_000)
    frame = AudioFrame.from_numpy(_sine(300, 0.01, 16_000), 16_000)
    assert resampler.push(frame) is frame
    assert resampler.flush() is None


def test_resampler_streams_441_to_16k_without_losing_samples() -> None:
    """100 × 10 ms at 44.1 kHz give 1 s at 16 kHz after flush, with the tone intact."""
    signal = _sine(440, 1.0, 44_100)
    frames = [AudioFrame.from_numpy(signal[i * 441 : (i + 1) * 441], 44_100) for i in range(100)]
    out = _stream(AudioResampler(16_000), frames)
    assert all(f.sample_rate == 16_000 and f.channels == 1 for f in out)
    joined = concat(out)
    assert joined is not None
    assert abs(joined.samples_per_channel - 16_000) <= 1
    assert _peak_hz(joined.to_numpy(), 16_000) == pytest.approx(440, abs=1)


def test_resampler_streaming_matches_one_shot() -> None:
    """Frame-by-frame output joins into the same audio as converting it in one go (no clicks)."""
    signal = _sine(700, 0.5, 48_000)
    frames = [AudioFrame.from_numpy(signal[i * 480 : (i + 1) * 480], 48_000) for i in range(50)]
    streamed = concat(_stream(AudioResampler(16_000), frames))
    whole = resample(AudioFrame.from_numpy(signal, 48_000), 16_000)
    assert streamed is not None
    n = min(streamed.samples_per_channel, whole.samples_per_channel)
    diff = np.abs(streamed.to_numpy()[:n].astype(int) - whole.to_numpy()[:n].astype(int))
    assert diff[200:-200].max() <= 2


def test_resampler_mixes_stereo_to_mono() -> None:
    """With channels=1, stereo input comes out mono, both when resampled and when passed through."""
    left = _sine(1_000, 0.1, 48_000)
    stereo = AudioFrame.from_numpy(np.stack([left, np.zeros_like(left)], axis=1), 48_000)
    out = concat(_stream(AudioResampler(16_000), [stereo]))
    assert out is not None and out.channels == 1
    # the silent right channel halves the level
    assert np.abs(out.to_numpy()[100:-100]).max() == pytest.approx(0.25 * 32767, rel=0.05)

    same_rate = AudioFrame.from_numpy(np.array([[100, 300], [10, 20]], dtype=np.int16), 16_000)
    mono = AudioResampler(16_000).push(same_rate)
    assert mono is not None and mono.channels == 1
    assert mono.to_numpy().tolist() == [200, 15]


def test_resampler_handles_input_rate_change() -> None:
    """Switching 44.1 kHz → 48 kHz mid-stream keeps the output rate and loses no audio."""
    a = _sine(440, 0.5, 44_100)
    b = _sine(440, 0.5, 48_000)
    frames = [AudioFrame.from_numpy(a[i * 441 : (i + 1) * 441], 44_100) for i in range(50)]
    frames += [AudioFrame.from_numpy(b[i * 480 : (i + 1) * 480], 48_000) for i in range(50)]
    out = _stream(AudioResampler(16_000), frames)
    assert all(f.sample_rate == 16_000 for f in out)
    total = sum(f.samples_per_channel for f in out)
    assert abs(total - 16_000) <= 2


def test_resampler_drains_old_rate_before_passing_through() -> None:
    """When input switches to the target rate, the resampled tail still comes out first."""
    resampler = AudioResampler(16_000)
    signal = _sine(440, 0.1, 48_000)
    converted = [resampler.push(AudioFrame.from_numpy(signal[i * 480 : (i + 1) * 480], 48_000)) for i in range(10)]
    native = AudioFrame.silence(0.01, 16_000)
    tail_and_native = resampler.push(native)
    assert tail_and_native is not None and tail_and_native.sample_rate == 16_000
    total = sum(f.samples_per_channel for f in converted if f is not None)
    total += tail_and_native.samples_per_channel
    assert abs(total - (1_600 + 160)) <= 1
    assert resampler.flush() is None


def test_resampler_flush_with_mono_input_and_stereo_target() -> None:
    """channels=2 does not upmix, and flushing a mono stream then works."""
    resampler = AudioResampler(16_000, channels=2)
    first = resampler.push(AudioFrame.from_numpy(_sine(440, 0.1, 48_000), 48_000))
    tail = resampler.flush()
    assert first is not None and tail is not None
    assert first.channels == tail.channels == 1
    assert abs(first.samples_per_channel + tail.samples_per_channel - 1_600) <= 1


def test_resampler_follows_channel_count_change() -> None:
    """With channels=2, a switch from mono to stereo input rebuilds the stream (no crash)."""
    resampler = AudioResampler(16_000, channels=2)
    resampler.push(AudioFrame.silence(0.05, 48_000))
    stereo = resampler.push(AudioFrame.silence(0.05, 48_000, channels=2))
    tail = resampler.flush()
    assert stereo is not None and stereo.channels == 2
    assert tail is not None and tail.channels == 2


def test_resampler_flush_without_input_is_none() -> None:
    """Nothing pushed, nothing to drain."""
    assert AudioResampler(16_000).flush() is None


# -- concat ----------------------------------------------------------------------------


def test_concat_joins_in_order() -> None:
    """Frames of one format join into one frame with the samples in order."""
    a = AudioFrame.from_numpy(np.array([1, 2], dtype=np.int16), 16_000)
    b = AudioFrame.from_numpy(np.array([3], dtype=np.int16), 16_000)
    joined = concat([a, b, a])
    assert joined is not None
    assert joined.to_numpy().tolist() == [1, 2, 3, 1, 2]
    assert joined.duration == pytest.approx(5 / 16_000)


def test_concat_empty_is_none() -> None:
    """There is no frame of zero frames."""
    assert concat([]) is None


@pytest.mark.parametrize("other", [AudioFrame.silence(0.01, 8_000), AudioFrame.silence(0.01, 16_000, channels=2)])
def test_concat_rejects_mixed_formats(other: AudioFrame) -> None:
    """Joining different rates or channel counts is an error, not silent garbage."""
    with pytest.raises(AudioFormatError, match="different formats"):
        concat([AudioFrame.silence(0.01, 16_000), other])


def test_numpy_integer_rates_are_accepted() -> None:
    """A rate read by numpy-based WAV readers is an np.int64, not an int."""
    import numpy as np

    frame = AudioFrame(b"\x00\x00" * 160, np.int64(16_000), np.int32(1))
    assert type(frame.sample_rate) is int and frame.duration == 0.01
