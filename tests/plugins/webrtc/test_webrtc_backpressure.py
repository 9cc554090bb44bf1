"""A stalled WebRTC sender (nobody pulls the track) never grows the agent-audio queue."""

from __future__ import annotations

import asyncio

from aiortc.mediastreams import MediaStreamError

from vocalis.testing import tone, virtual_time
from vocalis_webrtc import AgentAudioTrack, TrackAudioOutput


async def _speak(output: TrackAudioOutput, seconds: float) -> None:
    piece = tone(0.1, 48_000)
    for _ in range(round(seconds / 0.1)):
        await output.capture_frame(piece)
    output.flush()


@virtual_time
async def test_audio_behind_the_playout_clock_is_dropped_when_the_track_stalls() -> None:
    track = AgentAudioTrack()
    output = TrackAudioOutput(track)
    await _speak(output, 10.0)
    assert track.queued_seconds == 10.0  # a healthy reply: all of it waits to be sent
    for _ in range(5):  # five more replies while aiortc pulls nothing
        await output.wait_for_playout()
        await asyncio.sleep(5.0)
        await _speak(output, 10.0)
        # What the session's clock still expects to play, plus the slack; never the backlog.
        assert track.queued_seconds <= 10.0 + 1.0 + 1e-6
    track.stop()


@virtual_time
async def test_a_track_that_keeps_up_loses_nothing() -> None:
    track = AgentAudioTrack()
    output = TrackAudioOutput(track)
    puller = asyncio.ensure_future(_pull(track))
    for _ in range(3):
        await _speak(output, 4.0)
        await output.wait_for_playout()
        await asyncio.sleep(1.0)
    track.stop()
    pulled = await puller
    assert track.frames_with_audio >= 3 * 4.0 / 0.02 - 3  # every 20 ms of the three replies went out
    assert pulled > 0


async def _pull(track: AgentAudioTrack) -> int:
    count = 0
    try:
        while True:
            await track.recv()
            count += 1
    except MediaStreamError:  # stopped
        return count
