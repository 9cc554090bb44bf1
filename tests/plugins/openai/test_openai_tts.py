"""OpenAITTS against a local speech server: request shape, streaming, cancel, errors."""

from __future__ import annotations

import asyncio
import gc
import time
import warnings
from collections.abc import AsyncIterator, Iterator

import pytest
from audio_server import API_KEY, AudioServer, speech_pcm

from vocalis.audio import AudioFrame
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.testing.conformance import TTSConformance
from vocalis_openai import OpenAITTS
from vocalis_openai import tts as tts_module

TEXT = "Hello there. How are you today?"
FRAME_BYTES = 2 * 24_000 * 20 // 1000


@pytest.fixture(scope="module")
def running_server() -> Iterator[AudioServer]:
    with AudioServer() as server:
        yield server


@pytest.fixture
def server(running_server: AudioServer) -> AudioServer:
    running_server.reset()
    return running_server


def make_tts(server: AudioServer, **overrides: object) -> OpenAITTS:
    settings = {"base_url": server.base_url, "api_key": API_KEY, "max_retries": 0, **overrides}
    return OpenAITTS(**settings)


async def collect(frames: AsyncIterator[AudioFrame]) -> list[AudioFrame]:
    return [frame async for frame in frames]


def forget_dead_loop_client(provider: OpenAITTS) -> None:
    """Drop a client left on a loop that ``asyncio.run`` already closed.

    Its sockets can no longer be closed through their (dead) loop; collect
    them now, quietly, rather than as warnings in some later test.
    """
    asyncio.run(provider.aclose())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


class TestOpenAITTSConformance(TTSConformance):
    @pytest.fixture
    def provider(self, server: AudioServer) -> Iterator[OpenAITTS]:
        provider = make_tts(server)
        yield provider
        forget_dead_loop_client(provider)


async def test_request_shape_and_exact_audio(server: AudioServer) -> None:
    tts = make_tts(server, voice="coral", speed=1.25, instructions="Speak warmly.")
    frames = await collect(tts.synthesize(f"  {TEXT} "))
    await tts.aclose()

    [request] = server.speeches
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.body == {
        "model": "gpt-4o-mini-tts",
        "voice": "coral",
        "input": TEXT,
        "response_format": "pcm",
        "speed": 1.25,
        "instructions": "Speak warmly.",
    }
    # Chunks of odd sizes reassemble into exactly the audio sent, in whole frames.
    assert b"".join(f.data for f in frames) == speech_pcm(TEXT, 1.25)
    assert all((f.sample_rate, f.channels) == (24_000, 1) for f in frames)
    assert all(len(f.data) == FRAME_BYTES for f in frames[:-1])
    assert 0 < len(frames[-1].data) <= FRAME_BYTES


async def test_defaults_send_only_required_fields(server: AudioServer) -> None:
    tts = make_tts(server)
    await collect(tts.synthesize("Hi."))
    await tts.aclose()
    assert server.speeches[0].body == {
        "model": "gpt-4o-mini-tts",
        "voice": "alloy",
        "input": "Hi.",
        "response_format": "pcm",
    }


async def test_instructions_are_not_sent_to_tts_1(server: AudioServer) -> None:
    tts = make_tts(server, model="tts-1", instructions="Whisper.")
    await collect(tts.synthesize("Hi."))
    await tts.aclose()
    assert "instructions" not in server.speeches[0].body


async def test_frame_length_setting(server: AudioServer) -> None:
    tts = make_tts(server, frame_ms=40)
    frames = await collect(tts.synthesize(TEXT))
    await tts.aclose()
    assert {len(f.data) for f in frames[:-1]} == {2 * FRAME_BYTES}


async def test_nothing_to_say_makes_no_request(server: AudioServer) -> None:
    tts = make_tts(server)
    for text in ("", "   ", "\n\t", "... !?", "\u200b"):
        assert await collect(tts.synthesize(text)) == []
    await tts.aclose()
    assert server.speeches == []


async def test_long_text_is_split_under_the_limit(server: AudioServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tts_module, "MAX_INPUT_CHARS", 40)
    text = "First sentence is here. Second one follows it. Averyveryverylongwordwithnospaces!"
    tts = make_tts(server)
    frames = await collect(tts.synthesize(text))
    await tts.aclose()
    inputs = [r.body["input"] for r in server.speeches]
    assert all(len(piece) <= 40 for piece in inputs)
    assert "".join(inputs).replace(" ", "") == text.replace(" ", "")
    assert b"".join(f.data for f in frames) == b"".join(speech_pcm(p) for p in inputs)


def test_split_text() -> None:
    assert tts_module.split_text("One. Two three.", 100) == ["One. Two three."]
    pieces = tts_module.split_text("One two. Three four five.", 12)
    assert pieces == ["One two.", "Three four", "five."]
    assert tts_module.split_text("abcdefghij", 4) == ["abcd", "efgh", "ij"]


async def test_first_frame_arrives_while_the_server_is_still_sending(
    server: AudioServer,
) -> None:
    server.behaviour.hold_after = 3 * FRAME_BYTES
    tts = make_tts(server)
    frames = tts.synthesize(TEXT)
    # The server holds the rest until released: a provider that buffered the
    # whole response would never produce this frame.
    first = await asyncio.wait_for(anext(frames), 5)
    assert not server.finished.is_set()
    server.release()
    rest = await collect(frames)
    await tts.aclose()
    # The server thread sets `finished` just after its last write: on a busy
    # machine the client may have read everything a moment before.
    assert await asyncio.to_thread(server.finished.wait, 30)
    assert first.data + b"".join(f.data for f in rest) == speech_pcm(TEXT)


async def test_closing_midway_closes_the_response(server: AudioServer) -> None:
    server.behaviour.endless = True
    tts = make_tts(server)
    frames = tts.synthesize(TEXT)
    await anext(frames)
    started = time.perf_counter()
    await frames.aclose()  # type: ignore[attr-defined]
    assert time.perf_counter() - started < 2.0
    assert await asyncio.to_thread(server.disconnected.wait, 5.0)
    await tts.aclose()


async def test_cancelling_the_consumer_closes_the_response(server: AudioServer) -> None:
    server.behaviour.endless = True
    tts = make_tts(server)
    got_audio = asyncio.Event()

    async def consume() -> None:
        async for _ in tts.synthesize(TEXT):
            got_audio.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_audio.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(server.disconnected.wait, 5.0)
    await tts.aclose()


async def test_stream_aclose_midway_closes_the_response(server: AudioServer) -> None:
    server.behaviour.endless = True
    tts = make_tts(server)
    stream = tts.stream()
    stream.push_text("A sentence that never ends.")
    stream.end_input()
    async for _ in stream:
        break
    await stream.aclose()
    assert await asyncio.to_thread(server.disconnected.wait, 5.0)
    await tts.aclose()


async def test_dropped_connection_after_some_audio(server: AudioServer) -> None:
    server.behaviour.drop_after = 6000
    tts = make_tts(server)
    frames: list[AudioFrame] = []
    with pytest.raises(ProviderError) as caught:
        async for frame in tts.synthesize(TEXT):
            frames.append(frame)
    await tts.aclose()
    assert frames, "audio before the drop is delivered"
    assert caught.value.provider == "tts:openai" and caught.value.recoverable
    assert caught.value.kind is ErrorKind.CONNECTION
    assert str(caught.value).startswith("tts:openai: connection lost mid-stream")


@pytest.mark.parametrize(
    ("status", "recoverable", "message", "kind"),
    [
        (401, False, "Incorrect API key", ErrorKind.AUTH),
        (403, False, "scripted 403", ErrorKind.AUTH),
        (429, True, "scripted 429", ErrorKind.RATE_LIMIT),
        (500, True, "scripted 500", ErrorKind.SERVER),
        (503, True, "scripted 503", ErrorKind.SERVER),
    ],
)
async def test_http_errors(server: AudioServer, status: int, recoverable: bool, message: str, kind: ErrorKind) -> None:
    # ``message`` is the test server's own wording.
    if status == 401:
        tts = make_tts(server, api_key="sk-wrong")
    else:
        server.behaviour.status = status
        tts = make_tts(server)
    with pytest.raises(ProviderError) as caught:
        await collect(tts.synthesize(TEXT))
    await tts.aclose()
    assert caught.value.provider == "tts:openai"
    assert caught.value.recoverable is recoverable and caught.value.kind is kind
    assert f"HTTP {status}" in str(caught.value) and message in str(caught.value)


async def test_bad_request_is_not_recoverable(server: AudioServer) -> None:
    tts = make_tts(server, voice="")
    with pytest.raises(ProviderError) as caught:
        await collect(tts.synthesize(TEXT))
    await tts.aclose()
    assert not caught.value.recoverable and caught.value.kind is ErrorKind.BAD_REQUEST
    assert "HTTP 400" in str(caught.value)


async def test_server_that_never_answers_times_out(server: AudioServer) -> None:
    server.behaviour.hang = True
    tts = make_tts(server, timeout=0.3)
    with pytest.raises(ProviderError) as caught:
        await asyncio.wait_for(collect(tts.synthesize(TEXT)), 10)
    await tts.aclose()
    assert caught.value.recoverable and caught.value.kind is ErrorKind.TIMEOUT
    assert "/audio/speech timed out: no answer within 0.3 s" in str(caught.value)


async def test_stall_midway_times_out(server: AudioServer) -> None:
    server.behaviour.stall_after = 4 * FRAME_BYTES
    tts = make_tts(server, timeout=0.3)
    frames: list[AudioFrame] = []
    with pytest.raises(ProviderError) as caught:
        async for frame in tts.synthesize(TEXT):
            frames.append(frame)
    await tts.aclose()
    assert frames and caught.value.recoverable and caught.value.kind is ErrorKind.STALLED
    assert str(caught.value) == "tts:openai: the stream stalled: nothing arrived for 0.3 s"


async def test_compressed_audio_is_refused(server: AudioServer) -> None:
    server.behaviour.content_type = "audio/mpeg"
    tts = make_tts(server)
    with pytest.raises(ProviderError) as caught:
        await collect(tts.synthesize(TEXT))
    await tts.aclose()
    assert not caught.value.recoverable and caught.value.kind is ErrorKind.BAD_REQUEST
    assert "server sent audio/mpeg instead of raw PCM" in str(caught.value)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_TTS_OPENAI_VOICE", "marin")
    monkeypatch.setenv("VOCALIS_TTS_OPENAI_SPEED", "1.5")
    monkeypatch.setenv("VOCALIS_TTS_OPENAI_API_KEY", "sk-env-secret")
    tts = OpenAITTS()
    assert (tts.settings.voice, tts.settings.speed) == ("marin", 1.5)
    assert tts.model_name == "gpt-4o-mini-tts"
    assert "sk-env-secret" not in repr(tts)
    assert (tts.name, tts.sample_rate, tts.channels) == ("openai", 24_000, 1)
