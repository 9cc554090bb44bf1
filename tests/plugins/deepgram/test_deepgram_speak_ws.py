"""DeepgramTTS.stream() over the Speak WebSocket: messages, segments, interruption, limits, close codes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from deepgram_server_base import API_KEY, tone
from deepgram_speak_server import SpeakServer

import vocalis_deepgram.speak_pool as speak_pool
import vocalis_deepgram.tts_stream as tts_stream
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.tts import SynthesizedAudio
from vocalis_deepgram import DeepgramTTS


async def _reply(tts: DeepgramTTS, tokens: list[str]) -> list[SynthesizedAudio]:
    stream = tts.stream()
    for token in tokens:
        stream.push_text(token)
        await asyncio.sleep(0)
    stream.end_input()
    out = [audio async for audio in stream]
    await stream.aclose()
    return out


def _segments(out: list[SynthesizedAudio]) -> list[tuple[str, bytes]]:
    segments: list[tuple[str, bytes]] = []
    for audio in out:
        if audio.text:
            segments.append((audio.text, b""))
        text, data = segments[-1]
        segments[-1] = (text, data + audio.frame.data)
    return segments


async def test_sentences_go_out_as_speak_and_flush_and_come_back_as_segments(
    speak: SpeakServer, make_tts: Callable[..., DeepgramTTS]
) -> None:
    out = await _reply(make_tts(), ["Sure, ", "I can help", " with that. ", "What time ", "works for you?"])
    assert _segments(out) == [
        ("Sure, I can help with that.", tone("Sure, I can help with that.")),
        ("What time works for you?", tone("What time works for you?")),
    ]
    assert [a.segment_end for a in out].count(True) == 2 and out[-1].segment_end
    (conn,) = speak.connections
    assert conn.params == {"model": "aura-2-thalia-en", "encoding": "linear16", "sample_rate": "24000"}
    assert [m["type"] for m in conn.messages] == ["Speak", "Flush", "Speak", "Flush"]


async def test_the_connection_is_kept_for_the_next_reply(
    speak: SpeakServer, make_tts: Callable[..., DeepgramTTS]
) -> None:
    tts = make_tts()
    await tts.prewarm()  # the first reply finds a connection open already
    for text in ("First reply.", "Second reply.", "Third reply."):
        assert _segments(await _reply(tts, [text])) == [(text, tone(text))]
    assert len(speak.connections) == 1
    await tts.aclose()
    await asyncio.sleep(0.1)
    assert not [m for m in speak.connections[0].messages if m["type"] == "Clear"]


@pytest.mark.parametrize("noticed", [True, False])
async def test_a_kept_connection_that_died_is_replaced_without_a_word_lost(
    speak: SpeakServer, make_tts: Callable[..., DeepgramTTS], monkeypatch: pytest.MonkeyPatch, noticed: bool
) -> None:
    if not noticed:  # the close went unseen until the connection is used
        monkeypatch.setattr(speak_pool, "_is_open", lambda ws: True)
    speak.reset(idle_close=0.3)
    tts = make_tts()
    assert _segments(await _reply(tts, ["Before the pause."])) == [("Before the pause.", tone("Before the pause."))]
    await asyncio.sleep(0.6)  # the server hangs up the idle connection
    assert _segments(await _reply(tts, ["After the pause."])) == [("After the pause.", tone("After the pause."))]
    assert len(speak.connections) == 2


async def test_closing_mid_reply_clears_what_the_server_holds(
    speak: SpeakServer, make_tts: Callable[..., DeepgramTTS]
) -> None:
    speak.reset(chunk_delay=0.02)
    stream = make_tts().stream()
    stream.push_text("This is a long sentence that will be cut off. " * 4)
    stream.end_input()
    async for _ in stream:
        break
    await stream.aclose()
    await asyncio.sleep(0.2)
    (conn,) = speak.connections
    assert conn.messages[-1]["type"] == "Clear"
    assert conn.audio_bytes < len(tone("This is a long sentence that will be cut off. " * 4))


async def test_past_the_flush_budget_sentences_are_joined(
    speak: SpeakServer, make_tts: Callable[..., DeepgramTTS], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tts_stream, "_WINDOW", 0.5)  # Deepgram counts over 60 s
    tokens = ["First one here. ", "Second one here. ", "Third one here. ", "Fourth one here."]
    out = await _reply(make_tts(max_flushes_per_minute=2), tokens)
    texts = [text for text, _ in _segments(out)]
    assert texts == ["First one here.", "Second one here.", "Third one here. Fourth one here."]
    assert [m["type"] for m in speak.connections[0].messages].count("Flush") == 3


@pytest.mark.parametrize(
    ("code", "reason", "kind", "recoverable"),
    [
        (1011, "NET-0003", ErrorKind.TIMEOUT, True),
        (1008, "DATA-0000", ErrorKind.BAD_REQUEST, False),
        (1009, "BIG-0000", ErrorKind.BAD_REQUEST, False),
    ],
)
async def test_a_close_mid_reply_is_mapped_by_code(
    speak: SpeakServer,
    make_tts: Callable[..., DeepgramTTS],
    code: int,
    reason: str,
    kind: ErrorKind,
    recoverable: bool,
) -> None:
    speak.reset(close_after=5000, close_code=code, close_reason=reason)
    with pytest.raises(ProviderError) as info:
        await _reply(make_tts(), ["A sentence long enough to be cut off by the server."])
    assert (info.value.kind, info.value.recoverable) == (kind, recoverable)
    assert str(code) in str(info.value) and reason in str(info.value)


async def test_a_refused_upgrade_fails_before_any_audio(
    speak: SpeakServer, make_tts: Callable[..., DeepgramTTS]
) -> None:
    speak.reset(status=429)
    with pytest.raises(ProviderError) as info:
        await _reply(make_tts(), ["Hello there."])
    assert info.value.kind is ErrorKind.RATE_LIMIT and info.value.recoverable
    wrong = "dg-bad-ws-key-7e3a1c"
    speak.reset()
    with pytest.raises(ProviderError) as info:
        await _reply(make_tts(api_key=wrong), ["Hello there."])
    assert info.value.kind is ErrorKind.AUTH and wrong not in str(info.value) and API_KEY not in str(info.value)
