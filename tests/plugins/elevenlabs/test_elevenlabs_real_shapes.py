"""ElevenLabsTTS against messages shaped exactly as the real service sends them.

The shapes (see :mod:`elevenlabs_replay` for the sources) include what trips
clients up: ``isFinal: null`` on every chunk, ``audio: null`` on the last
message, both spellings of the durations list, alignment entries holding
several characters, alignments whose lists are null, message types and frames
this client does not know, the error message sent before a 1008 close, the
current ``{"detail": {"type", "code", ...}}`` error body, and a streamed body
labelled ``audio/mpeg`` that holds the raw PCM asked for.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from aiohttp import web
from elevenlabs_replay import FINAL, RATE, Replay, ReplayServer, alignment_of, chunk, pcm_for
from elevenlabs_server import API_KEY
from loguru import logger

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.tts import SynthesizedAudio
from vocalis_elevenlabs import ElevenLabsTTS

UNUSUAL = (
    "Unusual activity detected. Free Tier usage disabled. If you are using a proxy/VPN you might need to "
    "purchase a Paid Plan to not trigger our abuse detectors."
)


def provider(url: str, **overrides: Any) -> ElevenLabsTTS:
    return ElevenLabsTTS(_env_file=None, api_key=API_KEY, base_url=url, **overrides)


async def speak(tts: ElevenLabsTTS, text: str) -> list[SynthesizedAudio]:
    stream = tts.stream()
    stream.push_text(text)
    stream.end_input()
    out = [audio async for audio in stream]
    assert stream.transport == "websocket"
    await stream.aclose()
    return out


async def reply_script(replay: Replay) -> None:
    first = await replay.next()
    assert first["text"] == " "
    one = " " + " ".join((await replay.text_until(lambda m: m.get("flush") is True)).split())
    await replay.send(chunk(pcm_for(one), alignment_of(list(one)), normalized=alignment_of(list(one.lower()))))
    await replay.send({"type": "something_new"}, "[]", "not json", b"\x00\x01")
    two = " ".join((await replay.text_until(lambda m: m.get("text") == "")).split())
    half = len(two) // 2
    pairs = [two[i : i + 2] for i in range(0, half, 2)]  # entries of two characters
    pcm = pcm_for(two)
    cut = sum(len(p) for p in pairs) * RATE // 100  # 10 ms of 16-bit samples per character
    await replay.send(chunk(pcm[:cut], alignment_of(pairs, "charDurationsMs")))
    await replay.send(chunk(pcm[cut:], {"chars": None, "charStartTimesMs": None, "charsDurationsMs": None}))
    await replay.send(FINAL)
    await replay.ws.close()


async def test_a_reply_as_the_service_sends_it() -> None:
    async with ReplayServer(reply_script) as server:
        tts = provider(server.url)
        out = await speak(tts, "Hello there. How are you today?")
        await tts.aclose()
    assert [a.text for a in out if a.text] == ["Hello there.", "How are you today?"]
    audio = b"".join(a.frame.data for a in out)
    assert audio == pcm_for(" Hello there.") + pcm_for("How are you today?")
    # The second sentence starts where its "H" is aligned: right after the first's audio.
    second = next(i for i, a in enumerate(out) if a.text == "How are you today?")
    assert sum(len(a.frame.data) for a in out[:second]) == len(pcm_for(" Hello there."))
    assert out[second - 1].segment_end and out[-1].segment_end
    (socket,) = server.sockets
    assert socket.query["sync_alignment"] == "true" and socket.query["output_format"] == "pcm_24000"
    assert socket.received[-1] == {"text": ""}


async def test_what_is_ignored_is_logged_without_the_key() -> None:
    async def script(replay: Replay) -> None:
        await replay.next()
        text = " ".join((await replay.text_until(lambda m: m.get("text") == "")).split())
        await replay.send(f"<html>gateway error for key {API_KEY}</html>", chunk(pcm_for(text), None), FINAL)

    lines: list[str] = []
    logger.enable("vocalis_elevenlabs")
    sink = logger.add(lines.append, level="DEBUG", format="{message}")
    try:
        async with ReplayServer(script) as server:
            tts = provider(server.url)
            out = await speak(tts, "Hello there.")
            await tts.aclose()
    finally:
        logger.remove(sink)
        logger.disable("vocalis_elevenlabs")
    assert b"".join(a.frame.data for a in out) == pcm_for("Hello there.")
    assert any("not JSON" in line for line in lines) and not any(API_KEY in line for line in lines)


@pytest.mark.parametrize(
    ("message", "reason", "kind", "recoverable"),
    [
        ({"message": UNUSUAL, "error": "detected_unusual_activity", "code": 1008}, UNUSUAL, ErrorKind.AUTH, False),
        (None, UNUSUAL, ErrorKind.AUTH, False),  # the close alone, no message before it
        (
            {"message": "Could not parse input message, make sure it is a json and follows the schema outlined in "
             "protocol.", "error": "invalid_input_message", "code": 1008},
            "",
            ErrorKind.BAD_REQUEST,
            False,
        ),
        ({"message": "busy", "error": {"type": "rate_limit_error", "code": "concurrent_limit_exceeded",
                                       "message": "Too many concurrent requests."}}, "", ErrorKind.RATE_LIMIT, True),
    ],
)  # fmt: skip
async def test_socket_errors_as_the_service_sends_them(
    message: dict[str, Any] | None, reason: str, kind: ErrorKind, recoverable: bool
) -> None:
    async def script(replay: Replay) -> None:
        await replay.next()
        await replay.next()
        if message is not None:
            await replay.send(message)
        await replay.ws.close(code=1008, message=reason.encode()[:123])

    async with ReplayServer(script) as server:
        tts = provider(server.url, transport="websocket")
        with pytest.raises(ProviderError) as caught:
            await speak(tts, "Hello there.")
        await tts.aclose()
    assert (caught.value.kind, caught.value.recoverable) == (kind, recoverable)
    assert API_KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("status", "body", "kind", "recoverable"),
    [
        (400, {"detail": {"type": "validation_error", "code": "invalid_parameters", "status": "invalid_parameters",
                          "message": "model_id is not a model", "request_id": "3c807fc4", "param": "model_id"}},
         ErrorKind.BAD_REQUEST, False),
        (429, {"detail": {"type": "rate_limit_error", "code": "concurrent_limit_exceeded",
                          "message": "Too many concurrent requests.", "request_id": "3c807fc5", "param": None}},
         ErrorKind.RATE_LIMIT, True),
        (401, {"detail": {"status": "quota_exceeded", "message": "This request exceeds your quota."}},
         ErrorKind.AUTH, False),
    ],
)  # fmt: skip
async def test_http_error_bodies_old_and_new(status: int, body: Any, kind: ErrorKind, recoverable: bool) -> None:
    async def http(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=status)

    async with ReplayServer(http=http) as server:
        tts = provider(server.url)
        with pytest.raises(ProviderError) as caught:
            _ = [frame async for frame in tts.synthesize("Hello there.")]
        await tts.aclose()
    assert (caught.value.kind, caught.value.recoverable) == (kind, recoverable)
    assert body["detail"]["message"] in str(caught.value)


def _wav(pcm: bytes) -> bytes:
    """A WAV file with a LIST chunk before its data, as some encoders write."""
    fmt = struct.pack("<HHIIHH", 1, 1, RATE, RATE * 2, 2, 16)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"LIST" + struct.pack("<I", 6) + b"INFO\x00\x00"
    chunks += b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


PCM = pcm_for("Hello there.")


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("audio/mpeg", PCM, PCM),  # raw PCM under the label the API's description gives every format
        ("audio/pcm", PCM, PCM),
        ("audio/wav", _wav(PCM), PCM),  # wrapped in a WAV file: the header is not played
        ("audio/mpeg", b"\xff\xfb\x90\xc4" + bytes(4000), None),  # really MP3: refused
        ("application/octet-stream", b"OggS\x00\x02" + bytes(4000), None),
    ],
)
async def test_the_audio_decides_not_the_label(content_type: str, body: bytes, expected: bytes | None) -> None:
    async def http(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        for start in range(0, len(body), 7):  # small chunks: the format is told across them
            await response.write(body[start : start + 7])
        await response.write_eof()
        return response

    async with ReplayServer(http=http) as server:
        tts = provider(server.url)
        try:
            audio: bytes | None = b"".join([frame.data async for frame in tts.synthesize("Hello there.")])
        except ProviderError as exc:
            assert exc.kind is ErrorKind.BAD_REQUEST and not exc.recoverable
            audio = None
        await tts.aclose()
    assert audio == expected
