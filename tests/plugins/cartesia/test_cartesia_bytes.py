"""CartesiaTTS.synthesize() over ``POST /tts/bytes``: the request, the streamed audio,
closing midway, and failures mapped to ProviderErrors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from cartesia_protocol import speech_pcm
from cartesia_server import API_KEY, CartesiaServer

from vocalis.audio import AudioFrame
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis_cartesia import CartesiaTTS

TEXT = "Hello there. How are you today?"


async def collect(tts: CartesiaTTS, text: str = TEXT) -> list[AudioFrame]:
    return [frame async for frame in tts.synthesize(text)]


async def test_request_shape_and_exact_audio(server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]) -> None:
    tts = make_tts(voice_id="v-9", language=None, sample_rate=22_050, generation_config={"speed": 1.1})
    frames = await collect(tts, f"  {TEXT} ")
    (request,) = server.bytes_requests
    assert request.headers["Cartesia-Version"] == "2025-04-16"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}" and request.headers["X-API-Key"] == API_KEY
    assert request.body == {
        "model_id": "sonic-3",
        "transcript": TEXT,
        "voice": {"mode": "id", "id": "v-9"},
        "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 22_050},
        "generation_config": {"speed": 1.1},
    }
    assert b"".join(f.data for f in frames) == speech_pcm(TEXT, 22_050)
    assert all(f.sample_rate == 22_050 for f in frames) and tts.sample_rate == 22_050
    assert {len(f.data) for f in frames[:-1]} == {2 * 441}  # 20 ms frames


async def test_nothing_to_say_makes_no_request(server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]) -> None:
    tts = make_tts()
    for text in ("", "   ", "... !?", "\u200b"):
        assert await collect(tts, text) == []
    assert server.bytes_requests == []


async def test_the_first_frame_comes_before_the_rest_of_the_audio(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    server.hold_after_chunks = 1
    frames = make_tts().synthesize(TEXT)
    first = await asyncio.wait_for(anext(frames), 10)  # the server holds the rest back
    server.release()
    rest = [frame async for frame in frames]
    assert first.data + b"".join(f.data for f in rest) == speech_pcm(TEXT)


async def test_closing_midway_closes_the_response(server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]) -> None:
    server.hold_after_chunks = 2
    frames = make_tts().synthesize(TEXT)
    await anext(frames)
    await frames.aclose()  # type: ignore[attr-defined]
    server.release()  # the server finds the connection closed at its next write
    (request,) = server.bytes_requests
    for _ in range(3000):
        if request.disconnected:
            break
        await asyncio.sleep(0.01)
    assert request.disconnected


@pytest.mark.parametrize(
    ("status", "kind", "recoverable"),
    [
        (400, ErrorKind.BAD_REQUEST, False),
        (401, ErrorKind.AUTH, False),
        (402, ErrorKind.AUTH, False),
        (429, ErrorKind.RATE_LIMIT, True),
        (500, ErrorKind.SERVER, True),
        (503, ErrorKind.SERVER, True),
    ],
)
async def test_refused_requests(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS], status: int, kind: ErrorKind, recoverable: bool
) -> None:
    server.fail_status = status
    with pytest.raises(ProviderError) as info:
        await collect(make_tts())
    assert (info.value.kind, info.value.recoverable) == (kind, recoverable)
    assert f"HTTP {status}" in str(info.value) and "generation failed" in str(info.value)


async def test_a_dropped_connection_after_some_audio(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    server.close_after_chunks = 2
    got: list[AudioFrame] = []
    with pytest.raises(ProviderError) as info:
        async for frame in make_tts().synthesize(TEXT):
            got.append(frame)
    assert got and (info.value.kind, info.value.recoverable) == (ErrorKind.CONNECTION, True)
    assert "connection lost mid-stream" in str(info.value)


async def test_a_stalled_reply(server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]) -> None:
    server.hold_after_chunks = 1
    with pytest.raises(ProviderError) as info:
        await collect(make_tts(timeout=1.0))
    assert (info.value.kind, info.value.recoverable) == (ErrorKind.STALLED, True)
    server.release()


async def test_a_slow_first_byte_times_out(server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]) -> None:
    server.first_chunk_delay = 5.0
    with pytest.raises(ProviderError) as info:
        await collect(make_tts(timeout=0.3))
    assert info.value.kind in (ErrorKind.TIMEOUT, ErrorKind.STALLED) and info.value.recoverable
