"""A scripted Deepgram server that replays messages shaped as the real service sends them.

The protocol servers (:mod:`deepgram_listen_server`, :mod:`deepgram_speak_server`)
simulate the service; this one instead plays back fixed sequences of real
messages, with every field the service includes (nulls and fields this client
does not use among them), so a test can show the client copes with exactly
what the service sends. Shapes are from Deepgram's API reference and its
generated SDK types (``ListenV1Results``, ``ListenV1SpeechStarted``,
``ListenV1UtteranceEnd``, ``ListenV1Metadata``; ``SpeakV1Metadata``,
``SpeakV1Flushed``, ``SpeakV1Cleared``, ``SpeakV1Warning``) and the error
pages (close ``1011 NET-0001``, ``1008 DATA-0000``; HTTP bodies
``{"err_code", "err_msg", "request_id"}``).

A test gives a *script*: an async function that receives the connection
(:class:`Replay`) and sends what it likes after reading what it waits for.
Runs on the test's own event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from deepgram_server_base import API_KEY

REQUEST_ID = "8c8ebea9-dbec-45fa-a035-e4632cb05b5f"


def results(
    transcript: str | None, start: float, duration: float, *, final: bool, speech_final: bool = False, **extra: Any
) -> dict[str, Any]:
    """A ``Results`` message with every field the live API sends."""
    words = [
        {"word": w.strip(",.?!").lower(), "start": start, "end": start + duration, "confidence": 0.99,
         "punctuated_word": w, "language": "en"}
        for w in (transcript or "").split()
    ]  # fmt: skip
    message: dict[str, Any] = {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": duration,
        "start": start,
        "is_final": final,
        "speech_final": speech_final,
        "channel": {"alternatives": [{"transcript": transcript, "confidence": 0.9921875, "words": words}]},
        "metadata": {
            "request_id": REQUEST_ID,
            "model_info": {"name": "2-general-nova", "version": "2024-01-18.26916", "arch": "nova-3"},
            "model_uuid": "c0d1a568-ce81-4fea-97e7-bd45cb1fdf3c",
        },
        "from_finalize": False,
    }
    message.update(extra)
    return message


LISTEN_METADATA = {
    "type": "Metadata",
    "transaction_key": "deprecated",
    "request_id": REQUEST_ID,
    "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "created": "2024-08-29T22:37:55.202Z",
    "duration": 0.0,
    "channels": 0,
}
SPEAK_METADATA = {
    "type": "Metadata",
    "request_id": REQUEST_ID,
    "model_name": "aura-2-thalia-en",
    "model_version": "2025-04-07.0",
    "model_uuid": "ecb76e9d-f2db-4127-8060-79b05590d22f",
    "additional_model_uuids": None,
}


@dataclass
class Replay:
    """One connection of the replay server: what came in, and how to answer."""

    ws: web.WebSocketResponse
    query: dict[str, str]
    audio: bytearray = field(default_factory=bytearray)
    texts: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, *messages: dict[str, Any] | str | bytes) -> None:
        """Send each message: dicts as JSON text, str as text, bytes as binary."""
        for message in messages:
            if isinstance(message, bytes):
                await self.ws.send_bytes(message)
            elif isinstance(message, str):
                await self.ws.send_str(message)
            else:
                await self.ws.send_str(json.dumps(message))

    async def until_text(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """Read until a JSON text message of ``type`` ``kind`` (audio is kept)."""
        while True:
            message = await asyncio.wait_for(self.ws.receive(), timeout)
            if message.type is WSMsgType.BINARY:
                self.audio += message.data
            elif message.type is WSMsgType.TEXT:
                data = json.loads(message.data)
                self.texts.append(data)
                if data.get("type") == kind:
                    return data  # type: ignore[no-any-return]
            else:
                raise AssertionError(f"the client closed before sending {kind}")

    async def until_audio(self, count: int = 1, timeout: float = 10.0) -> None:
        """Read until ``count`` bytes of audio came in."""
        while len(self.audio) < count:
            message = await asyncio.wait_for(self.ws.receive(), timeout)
            if message.type is WSMsgType.BINARY:
                self.audio += message.data
            elif message.type is WSMsgType.TEXT:
                self.texts.append(json.loads(message.data))
            else:
                raise AssertionError("the client closed before sending audio")


Script = Callable[[Replay], Awaitable[None]]
Handler = Callable[[web.Request], Awaitable[web.Response]]


class ReplayServer:
    """``async with ReplayServer(script) as server``; ``server.url`` is its root.

    Every WebSocket path runs ``script``; ``http`` answers POSTs (or 404).
    """

    def __init__(self, script: Script | None = None, http: Handler | None = None) -> None:
        self.script = script
        self.http = http
        self.url = ""
        self.connections: list[Replay] = []
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> ReplayServer:
        app = web.Application()
        app.router.add_get("/v1/{path:.*}", self._socket)
        app.router.add_post("/v1/{path:.*}", self._post)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Token {API_KEY}":
            return web.json_response({"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."}, status=401)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        replay = Replay(ws, dict(request.query))
        self.connections.append(replay)
        if self.script is not None:
            await self.script(replay)
        if not ws.closed:
            await ws.close()
        return ws

    async def _post(self, request: web.Request) -> web.StreamResponse:
        if self.http is None:
            return web.Response(status=404)
        return await self.http(request)
