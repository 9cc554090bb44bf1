"""Property-based bad-audio fuzzing: frames of any size, rate, channel count and content.

Every input is either a valid frame (whose invariants hold) or rejected with an
:class:`AudioFormatError` that says what is wrong; a running session reports
rejected input as an ``error`` event from ``audio input`` and still completes
the next real turn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from session_helpers import conversation

from vocalis import Agent, AudioFormatError, AudioFrame, RealTimePipeline
from vocalis.audio import (
    MAX_CHANNELS,
    MAX_FRAME_SECONDS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    AudioResampler,
)
from vocalis.testing import Conversation, FakeRealtimeModel, FakeSTT, RealtimeTurn, run_virtual

# Deterministic in CI: fixed derandomised examples, no example database on disk.
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TEN_MB = 10 * 1024 * 1024

sizes = st.one_of(
    st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 640, 641, TEN_MB, TEN_MB + 1]),
    st.integers(0, 4_000),
)
rates = st.one_of(
    st.sampled_from(
        [
            0,
            -1,
            -16_000,
            1,
            7_999,
            8_000,
            11_025,
            16_000,
            22_050,
            44_100,
            48_000,
            96_000,
            192_000,
            192_001,
            2**31,
            10**30,
            10**5000,
        ]
    ),
    st.integers(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
    st.integers(),
)
channel_counts = st.one_of(st.sampled_from([0, 1, 2, 6, 8, 9, 300, -1]), st.integers(-3, 400))
contents = st.sampled_from(["silence", "max", "min", "clipping", "random"])


def pcm(size: int, content: str, seed: int = 0) -> bytes:
    """``size`` bytes of PCM-ish content (odd sizes end in a stray byte)."""
    if content == "random":
        return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    sample = {"silence": 0, "max": 32767, "min": -32768}.get(content)
    count = size // 2
    if sample is None:  # full-scale square wave: clipping on every sample
        samples = np.where(np.arange(count) % 2, -32768, 32767).astype("<i2")
    else:
        samples = np.full(count, sample, dtype="<i2")
    return samples.tobytes() + b"\x7f" * (size % 2)


def is_valid(size: int, rate: Any, channels: Any) -> bool:
    """The documented contract of :class:`AudioFrame`."""
    if type(rate) is not int or type(channels) is not int:
        return False
    if not (MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE and 1 <= channels <= MAX_CHANNELS):
        return False
    return size % (2 * channels) == 0 and size // (2 * channels) <= MAX_FRAME_SECONDS * rate


def explains(message: str) -> bool:
    """A rejection names what was wrong."""
    return any(word in message for word in ("sample rate", "channel", "bytes", "int16", "exceeds", "audio data"))


# -- the frame itself -------------------------------------------------------------


@settings(FUZZ, max_examples=300)
@given(size=sizes, rate=rates, channels=channel_counts, content=contents)
def test_frame_is_valid_or_rejected_clearly(size: int, rate: int, channels: int, content: str) -> None:
    data = pcm(min(size, 4_000) if size >= TEN_MB and content == "random" else size, content)
    size = len(data)
    try:
        frame = AudioFrame(data, rate, channels)
    except AudioFormatError as exc:
        assert not is_valid(size, rate, channels)
        assert explains(str(exc)), str(exc)
        assert len(str(exc)) < 200, "a huge bad value must not blow up the message"
        return
    assert is_valid(size, rate, channels)
    assert frame.samples_per_channel * 2 * frame.channels == size
    assert frame.duration <= MAX_FRAME_SECONDS
    assert frame.to_numpy().size == size // 2
    assert frame.to_mono().channels == 1


odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.binary(max_size=4),
    st.lists(st.integers(0, 255), max_size=4),
    st.just(np.int64(16_000)),
    st.just(np.float32(16_000)),
)


@settings(FUZZ, max_examples=200)
@given(
    data=st.one_of(st.binary(max_size=64), odd_values, st.integers(-5, 10**6)),
    rate=st.one_of(rates, odd_values),
    channels=st.one_of(channel_counts, odd_values),
)
def test_wrong_types_are_audio_format_errors(data: Any, rate: Any, channels: Any) -> None:
    """Never a TypeError, never ``bytes(n)`` turning an int into silence."""
    try:
        frame = AudioFrame(data, rate, channels)
    except AudioFormatError as exc:
        assert explains(str(exc)), str(exc)
        return
    assert isinstance(data, bytes)
    assert frame.sample_rate == int(rate) and frame.channels == int(channels)
    assert type(frame.sample_rate) is int and type(frame.channels) is int


float_samples = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(FUZZ, max_examples=200)
@given(
    samples=st.lists(float_samples, max_size=64),
    columns=st.sampled_from([None, 0, 1, 2, 6, 9]),
    rate=st.sampled_from([16_000, 7_999, 48_000]),
)
def test_from_float_arrays_clips_or_rejects_non_finite(samples: list[float], columns: int | None, rate: int) -> None:
    array = np.asarray(samples, dtype=np.float32)
    if columns:
        array = array[: len(array) - len(array) % columns].reshape(-1, columns)
    elif columns == 0:
        array = np.zeros((len(array), 0), dtype=np.float32)
    try:
        frame = AudioFrame.from_numpy(array, rate)
    except AudioFormatError as exc:
        finite = bool(np.isfinite(array).all())
        assert not finite or rate == 7_999 or columns == 0 or (columns or 1) > MAX_CHANNELS, str(exc)
        assert explains(str(exc)) or "NaN" in str(exc), str(exc)
        return
    assert np.isfinite(array).all()
    expected = (np.clip(array, -1.0, 1.0) * 32767.0).round().astype(np.int16)
    assert np.array_equal(frame.to_numpy().ravel(), expected.ravel())


@settings(FUZZ, max_examples=100)
@given(samples=st.lists(st.integers(-(2**40), 2**40), max_size=64), dtype=st.sampled_from(["int64", "int32", "uint16"]))
def test_from_integer_arrays_saturates(samples: list[int], dtype: str) -> None:
    info = np.iinfo(dtype)
    array = np.clip(np.asarray(samples, dtype=np.int64), info.min, info.max).astype(dtype)
    frame = AudioFrame.from_numpy(array, 16_000)
    assert np.array_equal(frame.to_numpy(), np.clip(array.astype(np.int64), -32768, 32767))


def test_from_numpy_rejects_a_channel_count_that_contradicts_the_array() -> None:
    with pytest.raises(AudioFormatError, match="does not match"):
        AudioFrame.from_numpy(np.zeros((4, 2)), 16_000, channels=3)
    with pytest.raises(AudioFormatError, match="channel"):
        AudioFrame.from_numpy(np.zeros(4), 16_000, channels=0)


formats = st.tuples(
    st.one_of(
        st.sampled_from([8_000, 11_025, 16_000, 44_100, 48_000, 192_000]), st.integers(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
    ),
    st.sampled_from([1, 2, 6, 8]),
    st.integers(0, 800),  # samples per channel
)


@settings(FUZZ, max_examples=40)
@given(
    frames=st.lists(formats, min_size=1, max_size=12), target=st.sampled_from([(16_000, 1), (24_000, 1), (48_000, 2)])
)
def test_resampler_takes_any_sequence_of_formats(frames: list[tuple[int, int, int]], target: tuple[int, int]) -> None:
    """Rate and channel switches mid-stream never raise and never change the output format."""
    rate, channels = target
    resampler = AudioResampler(rate, channels)
    out = [resampler.push(AudioFrame(bytes(2 * n * ch), r, ch)) for r, ch, n in frames]
    out.append(resampler.flush())
    produced = [frame for frame in out if frame is not None]
    assert all(frame.sample_rate == rate for frame in produced)
    if channels == 1:
        assert all(frame.channels == 1 for frame in produced)
    heard = sum(frame.duration for frame in produced)
    sent = sum(n / r for r, _, n in frames)
    # soxr keeps a little history at each format switch; nothing more is lost or invented.
    assert abs(heard - sent) <= 0.005 * len(frames) + 0.005


# -- into a running session ---------------------------------------------------------

pcm_inputs = st.tuples(sizes, rates, channel_counts, contents, st.integers(0, 3))
not_frames = st.one_of(st.none(), st.binary(max_size=8), st.text(max_size=4), st.integers(), st.just(np.zeros(4)))


def _deliver(session: Any, item: Any) -> bool:
    """Push one fuzz input; True when it should have been rejected."""
    kind, value = item
    if kind == "pcm":
        size, rate, channels, content, seed = value
        data = pcm(size, content, seed)
        session.push_pcm(data, rate, channels)
        return not is_valid(size, rate, channels)
    if kind == "frame":
        rate, channels, count = value
        session.push_audio(AudioFrame(pcm(2 * count * channels, "clipping"), rate, channels))
        return False
    session.push_audio(value)
    return True


inputs = st.lists(
    st.one_of(
        st.tuples(st.just("pcm"), pcm_inputs),
        st.tuples(st.just("frame"), formats),
        st.tuples(st.just("object"), not_frames),
    ),
    max_size=6,
)


async def _next_turn_works(conv: Conversation) -> None:
    await conv.silence(1.0)
    await conv.wait_for(
        lambda: conv.session.current_speech is None and conv.session.agent_state.value in ("idle", "listening")
    )
    turns = len(conv.agent_turns())
    await conv.user_speaks(0.6)
    await conv.wait_for(lambda: len(conv.agent_turns()) > turns and conv.session.current_speech is None)


@pytest.mark.loop_block_ok(2.0, reason="a 10 MB frame (26 s at 192 kHz) is resampled in one push_pcm call")
@settings(FUZZ, max_examples=80)
@given(items=inputs)
def test_session_survives_any_audio_input(items: list[tuple[str, Any]]) -> None:
    async def main() -> tuple[int, Conversation]:
        stt = FakeSTT(["hello there"] * 50)
        async with conversation(stt=stt, responses=["OK."]) as conv:
            rejected = sum(_deliver(conv.session, item) for item in items)
            await _next_turn_works(conv)
        return rejected, conv

    rejected, conv = run_virtual(main())
    errors = conv.errors()
    assert all(
        e["source"] == "audio input" and explains(e["message"]) or "AudioFrame" in e["message"] for e in errors
    ), errors
    assert len(errors) == rejected
    assert conv.user_turns()[-1] == "hello there"
    assert conv.agent_turns()[-1] == "OK."


@pytest.mark.loop_block_ok(2.0, reason="a 10 MB frame (26 s at 192 kHz) is resampled in one push_pcm call")
@settings(FUZZ, max_examples=40)
@given(items=inputs)
def test_realtime_session_survives_any_audio_input(items: list[tuple[str, Any]]) -> None:
    async def main() -> tuple[int, Conversation]:
        model = FakeRealtimeModel([RealtimeTurn(heard="hello there", reply="OK.")] * 50)
        async with Conversation(Agent("Be brief."), RealTimePipeline(model)) as conv:
            rejected = sum(_deliver(conv.session, item) for item in items)
            await _next_turn_works(conv)
        return rejected, conv

    rejected, conv = run_virtual(main())
    assert [e["source"] for e in conv.errors()] == ["audio input"] * rejected
    assert conv.agent_turns()[-1] == "OK."


@pytest.mark.loop_block_ok(2.0, reason="a 10 MB frame (26 s at 192 kHz) is resampled in one push_pcm call")
def test_ten_megabyte_frames_are_rejected_or_taken() -> None:
    """10 MB is 5 min at 16 kHz (rejected: too long) but 26 s at 192 kHz (allowed)."""

    async def main() -> Conversation:
        async with conversation(stt=FakeSTT(["loud", "hello there"]), responses=["OK."]) as conv:
            conv.session.push_pcm(pcm(TEN_MB, "random", 1), 16_000)
            conv.session.push_pcm(pcm(TEN_MB, "max"), 192_000)
            await _next_turn_works(conv)
        return conv

    conv = run_virtual(main())
    assert len(conv.errors()) == 1 and "exceeds" in conv.errors()[0]["message"]
    assert conv.user_turns() == ["loud", "hello there"]
