"""The providers against messages shaped exactly as the real service sends them.

Every field the service includes is there (``channel_index``, ``metadata``,
``from_finalize: false``, word lists with ``punctuated_word``), as are the
shapes that trip clients up: an ``is_final``/``speech_final`` result with an
empty transcript, nulls where the SDK types say optional, message types this
client does not know, a text frame that is not JSON, a legacy ``Warning``
spelling, a reply labelled ``audio/mpeg`` that holds raw PCM. See
:mod:`deepgram_replay` for the sources.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web
from deepgram_helpers import Recorder, push
from deepgram_replay import LISTEN_METADATA, REQUEST_ID, SPEAK_METADATA, Replay, ReplayServer, results
from deepgram_server_base import API_KEY, tone

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.stt import SpeechEventType
from vocalis.testing.conformance import silence
from vocalis_deepgram import DeepgramSTT, DeepgramTTS

NULLS = {
    "type": "Results",
    "channel_index": [0, 1],
    "duration": None,
    "start": None,
    "is_final": None,
    "speech_final": None,
    "channel": {"alternatives": [{"transcript": None, "confidence": None, "words": None, "languages": None}]},
    "metadata": None,
}


def stt(url: str, **overrides: Any) -> DeepgramSTT:
    return DeepgramSTT(_env_file=None, api_key=API_KEY, base_url=url, reconnect_delay=0.01, **overrides)


def tts(url: str, **overrides: Any) -> DeepgramTTS:
    return DeepgramTTS(_env_file=None, api_key=API_KEY, base_url=url, **overrides)


async def listen_script(replay: Replay) -> None:
    await replay.until_audio(3200)
    await replay.send(
        {"type": "SpeechStarted", "channel": [0, 1], "timestamp": 0.32},
        results("Hello, I'd", 0.0, 1.0, final=False),
        {"type": "SomethingNew", "channel": [0, 1]},  # a type added after this client was written
        "not json at all",
        b"\x00\x01",
        results("Hello, I'd like to book", 0.0, 2.0, final=True),
        results("", 2.0, 0.5, final=True, speech_final=True),  # endpointing fires after the words
        {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 1.92},
        NULLS,
    )
    await replay.until_text("Finalize")
    await replay.send(results("a table for two.", 2.5, 1.5, final=True, from_finalize=True))
    await replay.until_text("CloseStream")
    await replay.send(LISTEN_METADATA)
    await replay.ws.close(code=1000)


async def test_a_live_session_as_the_service_sends_it() -> None:
    async with ReplayServer(listen_script) as server:
        provider = stt(server.url)
        stream = provider.stream()
        recorder = Recorder(stream).start()
        await push(stream, silence(0.2))
        await recorder.until(lambda: recorder.finals())
        stream.flush()
        await recorder.until(lambda: len(recorder.finals()) == 2)
        stream.end_input()
        await recorder.done()
        await stream.aclose()
        await provider.aclose()
    assert recorder.error is None
    assert recorder.finals() == ["Hello, I'd like to book", "a table for two."]
    interims = [e.text for e in recorder.events if e.type is SpeechEventType.INTERIM_TRANSCRIPT]
    assert interims[0] == "Hello, I'd"
    assert recorder.types()[0] == "start_of_speech" and recorder.types()[-1] == "end_of_speech"
    assert recorder.events[0].start_time == pytest.approx(0.32)
    (connection,) = server.connections
    assert [t["type"] for t in connection.texts] == ["Finalize", "CloseStream"]


async def test_a_prerecorded_reply_with_nulls_and_no_alternatives() -> None:
    replies = [
        {"metadata": {"request_id": REQUEST_ID, "models": ["c0d1a568"], "channels": 1, "duration": 1.2},
         "results": {"channels": [{"alternatives": [{"transcript": "Book a table.", "confidence": None,
                                                     "words": []}], "detected_language": None}]}},
        {"metadata": {"request_id": REQUEST_ID}, "results": {"channels": [{"alternatives": []}]}},
    ]  # fmt: skip

    async def http(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response(replies.pop(0))

    loud = [type(f)(b"\x00\x20" * (len(f.data) // 2), f.sample_rate) for f in silence(0.5)]
    async with ReplayServer(http=http) as server:
        provider = stt(server.url)
        first = await provider.recognize(loud)
        second = await provider.recognize(loud)
        await provider.aclose()
    assert (first.text, first.confidence, first.language) == ("Book a table.", 1.0, "en")
    assert second.text == ""


async def speak_script(replay: Replay) -> None:
    await replay.send(SPEAK_METADATA)
    while True:
        await replay.until_text("Flush")
        speak = [t for t in replay.texts if t["type"] == "Speak"]
        pcm = tone(speak[-1]["text"])
        await replay.send(pcm[:4801], {"type": "Warning", "warn_code": "W-1", "warn_msg": "legacy spelling"})
        await replay.send({"type": "Surprise"}, pcm[4801:], {"type": "Flushed", "sequence_id": len(speak) - 1})


async def test_a_spoken_reply_as_the_service_sends_it() -> None:
    async with ReplayServer(speak_script) as server:
        provider = tts(server.url)
        stream = provider.stream()
        stream.push_text("Hello there. ")
        stream.push_text("How are you today?")
        stream.end_input()
        out = [audio async for audio in stream]
        await stream.aclose()
        await provider.aclose()
    assert [a.text for a in out if a.text] == ["Hello there.", "How are you today?"]
    assert b"".join(a.frame.data for a in out) == tone("Hello there.") + tone("How are you today?")
    assert sum(a.segment_end for a in out) == 2 and out[-1].segment_end
    (connection,) = server.connections
    assert connection.query == {"model": "aura-2-thalia-en", "encoding": "linear16", "sample_rate": "24000"}


@pytest.mark.parametrize(
    "error",
    [
        {"type": "Error", "err_code": "INVALID_INPUT", "err_msg": "The text could not be spoken."},
        {"type": "Error", "description": "The text could not be spoken.", "code": "INVALID_INPUT"},
    ],
)
async def test_an_error_message_on_the_speak_socket(error: dict[str, str]) -> None:
    async def script(replay: Replay) -> None:
        await replay.send(SPEAK_METADATA)
        await replay.until_text("Flush")
        await replay.send(error)
        await asyncio.sleep(0.5)
        await replay.ws.close(code=1008, message=b"DATA-0000")

    async with ReplayServer(script) as server:
        provider = tts(server.url)
        stream = provider.stream()
        stream.push_text("Say this.")
        stream.end_input()
        with pytest.raises(ProviderError) as info:
            _ = [audio async for audio in stream]
        await stream.aclose()
        await provider.aclose()
    assert not info.value.recoverable
    assert "INVALID_INPUT" in str(info.value) and "could not be spoken" in str(info.value)


@pytest.mark.parametrize(
    ("content_type", "body", "played"),
    [
        ("audio/mpeg", tone("Hello there."), True),  # PCM, labelled as the API's description does
        ("audio/l16; rate=24000", tone("Hello there."), True),
        ("audio/mpeg", b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(2000), False),  # really MP3
        ("audio/mpeg", b"\xff\xfb\x90\xc4\x00\x00" + bytes(2000), False),  # an MP3 frame, no ID3 tag
    ],
)
async def test_the_audio_decides_not_the_label(content_type: str, body: bytes, played: bool) -> None:
    async def http(request: web.Request) -> web.Response:
        assert json.loads(await request.read()) == {"text": "Hello there."}
        return web.Response(body=body, headers={"Content-Type": content_type})

    async with ReplayServer(http=http) as server:
        provider = tts(server.url, websocket=False)
        try:
            audio = b"".join([frame.data async for frame in provider.synthesize("Hello there.")])
            error = None
        except ProviderError as exc:
            error = exc
        await provider.aclose()
    if played:
        assert error is None and audio == body
    else:
        assert error is not None and error.kind is ErrorKind.BAD_REQUEST and not error.recoverable
