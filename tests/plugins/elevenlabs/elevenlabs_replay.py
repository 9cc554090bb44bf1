"""A scripted ElevenLabs server that replays messages shaped as the real service sends them.

:mod:`elevenlabs_server` simulates the service; this one plays back fixed
messages with every field and spelling the service uses, so a test can show
the client copes with them: ``{"audio", "isFinal": null, "alignment",
"normalizedAlignment"}`` chunks (``charsDurationsMs`` as the reference
spells it, ``charDurationsMs`` as the generated SDK types do, alignments that
are null or hold several characters per entry), the last message ``{"audio":
null, "isFinal": true, "normalizedAlignment": null, "alignment": null}``,
error messages ``{"message", "error", "code": 1008}`` before a 1008 close,
and HTTP error bodies in the legacy ``{"detail": {"status", "message"}}`` and
the current ``{"detail": {"type", "code", "message", "status", "request_id",
"param"}}`` shapes (the "Errors" page of the reference).

A test gives a *script* for the socket and/or a handler for
``POST .../stream``. Runs on the test's own event loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web
from elevenlabs_server import API_KEY

RATE = 24_000
MS_PER_CHAR = 10


def pcm_for(text: str) -> bytes:
    """Speech for ``text``: ``MS_PER_CHAR`` of tone per character, spaces included."""
    samples = RATE * MS_PER_CHAR // 1000 * len(text)
    return (6000 * np.sin(2 * np.pi * 220 * np.arange(samples) / RATE)).astype("<i2").tobytes()


def chunk(pcm: bytes, alignment: dict[str, Any] | None, *, normalized: dict[str, Any] | None = None) -> dict[str, Any]:
    """An audio message with every field the service sends."""
    return {
        "audio": base64.b64encode(pcm).decode(),
        "isFinal": None,
        "normalizedAlignment": normalized,
        "alignment": alignment,
    }


def alignment_of(chars: list[str], durations_key: str = "charsDurationsMs") -> dict[str, Any]:
    """An alignment of ``chars`` (entries of one or more characters), from the chunk's start."""
    starts, at = [], 0
    for entry in chars:
        starts.append(at * MS_PER_CHAR)
        at += len(entry)
    return {
        "chars": chars,
        "charStartTimesMs": starts,
        durations_key: [MS_PER_CHAR * len(entry) for entry in chars],
    }


FINAL = {"audio": None, "isFinal": True, "normalizedAlignment": None, "alignment": None}


@dataclass
class Replay:
    """One socket of the replay server: what came in, and how to answer."""

    ws: web.WebSocketResponse
    query: dict[str, str]
    headers: dict[str, str]
    received: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, *messages: dict[str, Any] | str | bytes) -> None:
        """Send each message: dicts as JSON text, str as text, bytes as binary."""
        for message in messages:
            if isinstance(message, bytes):
                await self.ws.send_bytes(message)
            elif isinstance(message, str):
                await self.ws.send_str(message)
            else:
                await self.ws.send_str(json.dumps(message))

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next message of the client."""
        message = await asyncio.wait_for(self.ws.receive(), timeout)
        if message.type is not WSMsgType.TEXT:
            raise AssertionError(f"expected a JSON text message, got {message.type.name}")
        data: dict[str, Any] = json.loads(message.data)
        self.received.append(data)
        return data

    async def text_until(self, predicate: Callable[[dict[str, Any]], bool]) -> str:
        """The text sent until a message that satisfies ``predicate`` (included)."""
        text = ""
        while True:
            message = await self.next()
            text += message.get("text", "")
            if predicate(message):
                return text


Script = Callable[[Replay], Awaitable[None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ReplayServer:
    """``async with ReplayServer(script, http) as server``; ``server.url`` as ``base_url``."""

    def __init__(self, script: Script | None = None, http: Handler | None = None) -> None:
        self.script = script
        self.http = http
        self.url = ""
        self.sockets: list[Replay] = []
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> ReplayServer:
        app = web.Application()
        app.router.add_get("/v1/text-to-speech/{voice}/stream-input", self._socket)
        app.router.add_post("/v1/text-to-speech/{voice}/stream", self._post)
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
        if request.headers.get("xi-api-key") != API_KEY:
            body = {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
            return web.json_response(body, status=401)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        replay = Replay(ws, dict(request.query), dict(request.headers))
        self.sockets.append(replay)
        if self.script is not None:
            await self.script(replay)
        if not ws.closed:
            await ws.close()
        return ws

    async def _post(self, request: web.Request) -> web.StreamResponse:
        if self.http is None:
            return web.Response(status=404)
        return await self.http(request)
