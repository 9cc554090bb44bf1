"""Audio conversion and the paced outbound track, without a network."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from vocalis.audio import AudioFrame
from vocalis.testing import tone, virtual_time
from vocalis_webrtc import AgentAudioTrack, InboundAudio, TrackAudioOutput


def av_frame(samples: np.ndarray, fmt: str, layout: str, rate: int = 48_000) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout=layout)
    frame.sample_rate = rate
    return frame


def test_stereo_opus_output_becomes_int16_mono() -> None:
    # aiortc's Opus decoder hands out packed s16 stereo at 48 kHz.
    left = np.full(960, 1000, dtype=np.int16)
    right = np.full(960, 3000, dtype=np.int16)
    packed = np.stack([left, right], axis=1).reshape(1, -1)
    out = InboundAudio().convert(av_frame(packed, "s16", "stereo"))
    assert out is not None
    assert (out.sample_rate, out.channels, out.samples_per_channel) == (48_000, 1, 960)
    samples = out.to_numpy()
    assert np.all(np.abs(samples.astype(int) - 2000) <= 600), samples[:4]  # a mix of both channels


def test_planar_float_and_mono_frames_are_converted() -> None:
    inbound = InboundAudio()
    planar = np.stack([np.full(480, 0.5, dtype=np.float32), np.full(480, 0.5, dtype=np.float32)])
    out = inbound.convert(av_frame(planar, "fltp", "stereo", 24_000))
    assert out is not None and (out.sample_rate, out.channels, out.samples_per_channel) == (
        24_000,
        1,
        480,
    )
    assert abs(int(out.to_numpy()[100]) - 16384) < 2000
    mono = np.arange(-480, 480, dtype=np.int16).reshape(1, -1)
    same = inbound.convert(av_frame(mono, "s16", "mono"))
    assert same is not None and np.array_equal(same.to_numpy(), mono.reshape(-1))


@virtual_time
async def test_the_track_sends_20_ms_frames_in_real_time_with_silence_between() -> None:
    loop = asyncio.get_running_loop()
    track = AgentAudioTrack()
    start = loop.time()
    frames = [await track.recv() for _ in range(5)]
    # Five frames take four ticks: the first goes out at once.
    assert loop.time() - start == pytest.approx(0.08)
    assert [f.pts for f in frames] == [0, 960, 1920, 2880, 3840]
    assert all(f.time_base == fractions.Fraction(1, 48_000) and f.sample_rate == 48_000 for f in frames)
    assert all(f.samples == 960 and f.format.name == "s16" and f.layout.name == "mono" for f in frames)
    assert all(not f.to_ndarray().any() for f in frames)  # nothing queued: silence

    track.push(tone(0.1, 24_000, frequency=440.0))  # the TTS's rate: resampled to 48 kHz
    assert track.queued_seconds < 0.1  # the resampler's filter holds some back...
    track.drain()
    assert track.queued_seconds == pytest.approx(0.1, abs=0.002)  # ...until the utterance ends
    loud = [await track.recv() for _ in range(4)]
    assert all(np.abs(f.to_ndarray()).max() > 5000 for f in loud[1:])
    assert [f.pts for f in loud] == [4800, 5760, 6720, 7680]
    assert loop.time() - start == pytest.approx(0.16)
    assert track.frames_with_audio == 4


@virtual_time
async def test_a_stalled_loop_restarts_the_clock_instead_of_bursting() -> None:
    loop = asyncio.get_running_loop()
    track = AgentAudioTrack()
    await track.recv()
    await asyncio.sleep(1.0)  # the sender was not scheduled for a second
    late = loop.time()
    await track.recv()  # sent at once, and the clock restarts from here
    await track.recv()
    assert loop.time() - late == pytest.approx(0.02)


@virtual_time
async def test_discard_silences_the_next_frame() -> None:
    track = AgentAudioTrack()
    output = TrackAudioOutput(track)
    await output.capture_frame(tone(2.0, 48_000))
    assert track.queued_seconds == pytest.approx(2.0, abs=0.01)
    assert np.abs((await track.recv()).to_ndarray()).max() > 5000
    output.clear_buffer()  # barge-in: the session drops the rest of the utterance
    assert track.queued_seconds == 0
    assert not (await track.recv()).to_ndarray().any()


@virtual_time
async def test_pausing_discards_and_resuming_replays_from_the_pause() -> None:
    track = AgentAudioTrack()
    output = TrackAudioOutput(track)
    await output.capture_frame(tone(1.0, 24_000))
    output.flush()  # the end of the utterance drains the resampler
    assert track.queued_seconds == pytest.approx(1.0, abs=0.002)
    await asyncio.sleep(0.5)
    heard = output.pause()
    assert heard == pytest.approx(0.5, abs=0.03)
    assert track.queued_seconds == 0
    output.resume()
    assert track.queued_seconds == pytest.approx(1.0 - heard, abs=0.002)


async def test_a_stopped_track_ends_the_sender() -> None:
    track = AgentAudioTrack()
    await track.recv()
    waiting = asyncio.get_running_loop().create_task(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await waiting
    with pytest.raises(MediaStreamError):
        await track.recv()


def test_frames_of_any_rate_are_queued() -> None:
    track = AgentAudioTrack()
    for rate in (16_000, 22_050, 48_000):
        track.push(AudioFrame.silence(0.1, rate))
        track.drain()
    assert track.queued_seconds == pytest.approx(0.3, abs=0.02)
    track.clear()
    assert track.queued_seconds == 0
