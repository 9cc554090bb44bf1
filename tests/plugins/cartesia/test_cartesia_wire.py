"""CartesiaTTS against traffic shaped like the real service's, message for message.

A scripted WebSocket server answers each context with the messages of the
API reference and of the SDK generated from its spec (``WebsocketResponse``:
``chunk`` with ``step_time``, ``timestamps``, ``phoneme_timestamps``,
``flush_done``, ``done``, ``error`` with ``title``/``message``/``error_code``/
``request_id``), including the fields a client must tolerate: nulls, fields
it does not know, types newer than it, an error about the connection itself.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from cartesia_protocol import speech_pcm, word_times

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.tts import SynthesizedAudio
from vocalis_cartesia import CartesiaTTS

FIRST, SECOND = "Hello there, my friend.", "How are you doing today?"
Script = Callable[[str, list[str]], list[dict[str, Any]]]


class ScriptedServer:
    """Answers a context, once its input ended, with ``script(context_id, sentences)``;
    ``close_code`` then closes the connection with that code."""

    def __init__(self, script: Script, close_code: int | None = None) -> None:
        self.script = script
        self.close_code = close_code
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sentences: dict[str, list[str]] = {}
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                break
            body = json.loads(message.data)
            if "cancel" in body:
                continue
            said = sentences.setdefault(body["context_id"], [])
            if body["transcript"]:
                said.append(body["transcript"].strip())
            if not body.get("continue"):
                for reply in self.script(body["context_id"], said):
                    await ws.send_str(json.dumps(reply))
                if self.close_code is not None:
                    await ws.close(code=self.close_code, message=b"bye")
        return ws

    async def __aenter__(self) -> ScriptedServer:
        app = web.Application()
        app.router.add_get("/tts/websocket", self._websocket)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def real_shaped(context_id: str, said: list[str]) -> list[dict[str, Any]]:
    """A context's answer as the service sends it: per sentence its chunks,
    its word and phoneme timestamps (after the audio they time), its flush_done."""
    head = {"done": False, "status_code": 206, "context_id": context_id}
    out: list[dict[str, Any]] = [{"type": "usage", **head, "characters": 47}]  # a type newer than the client
    offset = 0.0
    for flush_id, sentence in enumerate(said, start=1):
        pcm, step = speech_pcm(sentence), 4800
        for start in range(0, len(pcm), step):
            data = base64.b64encode(pcm[start : start + step]).decode()
            out.append({"type": "chunk", **head, "data": data, "step_time": 41.7, "flush_id": flush_id})
        out.append({"type": "timestamps", **head, "flush_id": flush_id, "word_timestamps": None})
        times = word_times(sentence, offset)
        stamps = {"words": [w for w, _, _ in times], "start": [s for _, s, _ in times], "end": [e for *_, e in times]}
        out.append({"type": "timestamps", **head, "flush_id": flush_id, "word_timestamps": stamps})
        phonemes = {"phonemes": ["h", "ə"], "start": [offset, offset + 0.05], "end": [offset + 0.05, offset + 0.09]}
        out.append({"type": "phoneme_timestamps", **head, "flush_id": flush_id, "phoneme_timestamps": phonemes})
        out.append({"type": "flush_done", **head, "flush_done": True, "flush_id": flush_id, "request_id": "r-1"})
        offset += len(pcm) / 2 / 24_000
    out.append({"type": "done", **head, "done": True})
    return out


def error_event(status: int | None, code: str | None, *, context: bool = True) -> Script:
    def script(context_id: str, said: list[str]) -> list[dict[str, Any]]:
        event: dict[str, Any] = {
            "type": "error",
            "done": True,
            "error_code": code,
            "title": "Too many concurrent requests",
            "message": "You have exceeded your plan's concurrency limit.",
            "request_id": "550e8400-e29b-41d4-a716-446655440000",
            "context_id": context_id if context else None,
        }
        if status is not None:
            event["status_code"] = status
        return [event]

    return script


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[..., Any]]:
    servers: list[ScriptedServer] = []
    providers: list[CartesiaTTS] = []

    async def make(script: Script, close_code: int | None = None) -> CartesiaTTS:
        server = await ScriptedServer(script, close_code).__aenter__()
        servers.append(server)
        providers.append(
            CartesiaTTS(api_key="sk_car_wire-1234567890", base_url=f"http://127.0.0.1:{server.port}", _env_file=None)
        )
        return providers[-1]

    yield make
    for tts in providers:
        await tts.aclose()
    for server in servers:
        await server.__aexit__()


async def speak(tts: CartesiaTTS) -> list[SynthesizedAudio]:
    stream = tts.stream()
    try:
        stream.push_text(f"{FIRST} {SECOND}")
        stream.end_input()
        return await asyncio.wait_for(_all(stream), 30)
    finally:
        await stream.aclose()


async def _all(stream: AsyncIterator[SynthesizedAudio]) -> list[SynthesizedAudio]:
    return [audio async for audio in stream]


async def test_a_real_shaped_turn(scripted: Callable[..., Any]) -> None:
    out = await speak(await scripted(real_shaped))
    texts = [audio.text for audio in out if audio.text]
    assert texts == [FIRST, SECOND]
    split = next(i for i, audio in enumerate(out) if audio.text == SECOND)
    for sentence, frames in ((FIRST, out[:split]), (SECOND, out[split:])):
        assert b"".join(a.frame.data for a in frames) == speech_pcm(sentence)
        assert frames[-1].segment_end and not any(a.segment_end for a in frames[:-1])
        words = [(w.word, round(w.start, 6), round(w.end, 6)) for a in frames for w in a.words]
        assert words == [(w, round(s, 6), round(e, 6)) for w, s, e in word_times(sentence)]


@pytest.mark.parametrize(
    ("status", "code", "kind", "recoverable"),
    [
        (429, "concurrency_limited", ErrorKind.RATE_LIMIT, True),
        (None, "concurrency_limited", ErrorKind.RATE_LIMIT, True),
        (400, None, ErrorKind.BAD_REQUEST, False),
        (500, None, ErrorKind.SERVER, True),
    ],
)
async def test_an_error_event_of_the_context(
    scripted: Callable[..., Any], status: int | None, code: str | None, kind: ErrorKind, recoverable: bool
) -> None:
    with pytest.raises(ProviderError) as info:
        await speak(await scripted(error_event(status, code)))
    assert (info.value.kind, info.value.recoverable) == (kind, recoverable)
    assert "exceeded your plan's concurrency limit" in str(info.value)


async def test_an_error_about_the_connection_then_a_close(scripted: Callable[..., Any]) -> None:
    # Refused after the upgrade: the error event says why, not the close code that follows.
    tts = await scripted(error_event(401, "invalid_api_key", context=False), close_code=1008)
    with pytest.raises(ProviderError) as info:
        await speak(tts)
    assert (info.value.kind, info.value.recoverable) == (ErrorKind.AUTH, False)
    assert "sk_car_wire-1234567890" not in str(info.value)


@pytest.mark.parametrize(("code", "kind"), [(1000, ErrorKind.CONNECTION), (1001, ErrorKind.CONNECTION)])
async def test_a_normal_close_mid_turn_is_a_dropped_connection(
    scripted: Callable[..., Any], code: int, kind: ErrorKind
) -> None:
    tts = await scripted(lambda context_id, said: real_shaped(context_id, said)[:5], close_code=code)
    with pytest.raises(ProviderError) as info:
        await speak(tts)
    assert (info.value.kind, info.value.recoverable) == (kind, True)
    assert f"close code {code}" in str(info.value)
