"""CartesiaTTS.stream() against the local server: one context per turn, continuations,
flushes that map audio to sentences, cancel on close, reuse and replacement of the WebSocket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from cartesia_protocol import speech_pcm
from cartesia_server import API_KEY, CartesiaServer

from vocalis.providers.tts import SynthesizedAudio
from vocalis.testing.conformance.support import StreamOutputs, drain
from vocalis_cartesia import CartesiaTTS, CartesiaTTSStream
from vocalis_cartesia import stream as stream_module

FIRST, SECOND = "Hello there, my friend.", "How are you doing today?"


async def speak(tts: CartesiaTTS, *pieces: str) -> tuple[CartesiaTTSStream, list[SynthesizedAudio]]:
    stream = tts.stream()
    for piece in pieces:
        stream.push_text(piece)
    stream.end_input()
    out = [audio async for audio in stream]
    await stream.aclose()
    return stream, out


async def until(predicate: Callable[[], bool], seconds: float = 30.0) -> None:
    """Wait for the server (in this loop) to have done something."""
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the server never got there")


def by_sentence(out: list[SynthesizedAudio]) -> list[tuple[str, bytes]]:
    """(text, audio) of each sentence, checking that each ends with ``segment_end``."""
    sentences: list[tuple[str, bytes]] = []
    for audio in out:
        if audio.text:
            assert not sentences or out[out.index(audio) - 1].segment_end, "a sentence began before the last ended"
            sentences.append((audio.text, b""))
        text, data = sentences[-1]
        sentences[-1] = (text, data + audio.frame.data)
    assert out[-1].segment_end
    return sentences


async def test_a_turn_is_one_context_of_continuations(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    tts = make_tts(voice_id="voice-1", model_id="sonic-2", language="fr", sample_rate=16_000, max_buffer_delay_ms=0)
    stream, out = await speak(tts, "Hello there, ", "my friend. How are ", "you doing today?")

    (handshake,) = server.handshakes
    assert handshake.query == {"cartesia_version": "2025-04-16", "api_key": API_KEY}
    assert handshake.headers["Authorization"] == f"Bearer {API_KEY}"
    assert handshake.headers["Cartesia-Version"] == "2025-04-16"
    (context,) = server.context_list()
    assert stream.context_ids == [context.context_id]
    base = {
        "model_id": "sonic-2",
        "voice": {"mode": "id", "id": "voice-1"},
        "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": 16_000},
        "language": "fr",
        "context_id": context.context_id,
        "add_timestamps": True,
        "use_normalized_timestamps": False,
        "max_buffer_delay_ms": 0,
    }
    assert context.inputs == [
        {**base, "transcript": FIRST, "continue": True},
        {**base, "transcript": "", "continue": True, "flush": True},
        {**base, "transcript": " " + SECOND, "continue": True},
        {**base, "transcript": "", "continue": True, "flush": True},
        {**base, "transcript": "", "continue": False},
    ]
    assert context.done_sent and not context.cancelled
    # Each sentence's audio, exactly, tagged with its text and closed by segment_end.
    assert by_sentence(out) == [(FIRST, speech_pcm(FIRST, 16_000)), (SECOND, speech_pcm(SECOND, 16_000))]
    assert all(a.frame.sample_rate == 16_000 for a in out)
    assert {len(a.frame.data) for a in out} <= {640} | {len(a.frame.data) for a in out if a.segment_end}
    # Word timestamps, on the stream's audio timeline.
    stamps = stream.word_timestamps
    assert [w.word for w in stamps] == ["Hello", "there", "my", "friend", "How", "are", "you", "doing", "today"]
    assert [w.segment for w in stamps] == [0] * 4 + [1] * 5
    assert stamps[4].start == pytest.approx(4 * 0.12, abs=0.021)


async def test_turns_share_one_websocket_with_a_context_each(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    tts = make_tts(api_key_in_query=False)
    await tts.prewarm()
    first, _ = await speak(tts, FIRST)
    second, _ = await speak(tts, SECOND)
    assert server.connections == 1 and len(server.handshakes) == 1
    assert server.handshakes[0].query == {"cartesia_version": "2025-04-16"}  # headers only
    assert [c.context_id for c in server.context_list()] == first.context_ids + second.context_ids
    assert first.context_ids != second.context_ids


async def test_concurrent_turns_multiplex(server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]) -> None:
    tts = make_tts()
    (_, a), (_, b) = await asyncio.gather(speak(tts, FIRST), speak(tts, SECOND))
    assert by_sentence(a) == [(FIRST, speech_pcm(FIRST))] and by_sentence(b) == [(SECOND, speech_pcm(SECOND))]
    assert server.connections == 1 and len(server.contexts) == 2


async def test_closing_midway_cancels_the_context(server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]) -> None:
    server.hold_after_chunks = 2
    tts = make_tts()
    stream = tts.stream()
    outputs = StreamOutputs(stream)
    stream.push_text(f"{FIRST} {SECOND}")
    stream.end_input()
    first = await anext(stream)
    assert first.text == FIRST
    await stream.aclose()
    outputs.closed = True
    await drain(stream)
    outputs.check("the stream")  # nothing sent once closed
    (context,) = server.context_list()
    await until(lambda: context.cancelled)
    cancels = [m for _, m in server.received if "cancel" in m]
    assert cancels == [{"context_id": context.context_id, "cancel": True}]
    server.release()


async def test_nothing_speakable_opens_no_context(server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]) -> None:
    tts = make_tts()
    _, out = await speak(tts, " ... ", "\u200b")
    assert out == [] and server.contexts == {}


@pytest.mark.parametrize(("send", "first"), [(False, 1), (True, 0)])
async def test_audio_maps_to_sentences_without_flush_ids_or_counting_from_zero(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS], send: bool, first: int
) -> None:
    server.send_flush_ids, server.first_flush_id = send, first
    _, out = await speak(make_tts(), FIRST + " ", SECOND)
    assert by_sentence(out) == [(FIRST, speech_pcm(FIRST)), (SECOND, speech_pcm(SECOND))]


async def test_a_long_pause_moves_to_a_new_context(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Cartesia lets a context expire after its audio; a tool call can take longer than that.
    monkeypatch.setattr(stream_module, "CONTEXT_REUSE_SECONDS", 0.2)
    server.context_expiry = 0.5
    tts = make_tts()
    stream = tts.stream()
    stream.push_text(FIRST + " ")
    stream.flush()
    out = [await anext(stream)]
    while not out[-1].segment_end:
        out.append(await anext(stream))
    await asyncio.sleep(1.0)  # the first context has expired by now
    stream.push_text(SECOND)
    stream.end_input()
    out += [a async for a in stream]
    await stream.aclose()
    assert by_sentence(out) == [(FIRST, speech_pcm(FIRST)), (SECOND, speech_pcm(SECOND))]
    first, second = server.context_list()
    assert stream.context_ids == [first.context_id, second.context_id]
    assert first.expired and second.inputs[0]["transcript"] == SECOND  # a fresh context: no leading space


async def test_a_closed_connection_is_replaced_for_the_next_turn(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    tts = make_tts()
    await speak(tts, FIRST)
    connection: Any = tts.connection()
    assert connection._ws is not None
    await connection._ws.close()  # as the server does after five idle minutes
    _, out = await speak(tts, SECOND)
    assert by_sentence(out) == [(SECOND, speech_pcm(SECOND))]
    assert server.connections == 2 and connection.connects == 2


async def test_a_connection_lost_while_the_reply_pauses_is_replaced(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    tts = make_tts()
    stream = tts.stream()
    stream.push_text(FIRST + " ")
    stream.flush()
    out = [await anext(stream)]
    while not out[-1].segment_end:
        out.append(await anext(stream))
    connection: Any = tts.connection()
    await connection._ws.close()  # dropped during a tool call, say: all audio so far was received
    stream.push_text(SECOND)
    stream.end_input()
    out += [a async for a in stream]
    await stream.aclose()
    assert by_sentence(out) == [(FIRST, speech_pcm(FIRST)), (SECOND, speech_pcm(SECOND))]
    assert server.connections == 2 and len(stream.context_ids) == 2


async def test_an_idle_connection_is_replaced_before_the_server_drops_it(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    from vocalis_cartesia.connection import MAX_IDLE_SECONDS

    tts = make_tts()
    await speak(tts, FIRST)
    connection: Any = tts.connection()
    connection._last_used -= MAX_IDLE_SECONDS + 1  # as if minutes had passed
    _, out = await speak(tts, SECOND)
    assert by_sentence(out) == [(SECOND, speech_pcm(SECOND))]
    assert server.connections == 2
