"""What the two Deepgram protocol servers share: a thread of their own, the key
check, Deepgram's error replies and the list of protocol violations.

Each server runs an aiohttp application on its own event loop in a thread, so
it serves tests that call ``asyncio.run`` per check (the conformance suites)
as well as async tests. A request or message the real service would refuse is
answered the way the service answers it *and* recorded in ``violations``;
the tests' fixtures fail when that list is not empty, so a client that sends
a malformed message fails its test even when it copes with the refusal.

Based on Deepgram's public reference: authentication (``Authorization: Token
<key>``, 401 ``INVALID_AUTH``), error bodies ``{"err_code", "err_msg",
"request_id"}`` with the ``dg-error`` and ``dg-request-id`` headers on a
refused WebSocket upgrade ("STT/TTS Troubleshooting WebSocket, NET, and DATA
Errors").
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import numpy as np
from aiohttp import web

API_KEY = "dg-test-key-6f0c2a9e71b4d83c"
SPEECH_THRESHOLD = 500  # RMS of a 10 ms window above which audio is speech


class ThreadedServer:
    """Use as ``with Server() as server``; ``server.url`` is its ``http://`` root."""

    def __init__(self) -> None:
        self.url = ""
        self.violations: list[str] = []
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.stopping: asyncio.Event | None = None

    def routes(self, app: web.Application) -> None:
        """Add the server's routes."""
        raise NotImplementedError

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def call(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the server's loop (thread-safe)."""
        self.loop.call_soon_threadsafe(fn, *args)

    async def _start(self) -> None:
        self.stopping = asyncio.Event()
        app = web.Application(client_max_size=30 * 1024 * 1024)
        self.routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        assert self.stopping is not None and self._runner is not None
        self.stopping.set()
        await self._runner.cleanup()

    # -- checks ---------------------------------------------------------------------
    def violation(self, text: str) -> None:
        """Record a request or message the real service would refuse."""
        self.violations.append(text)

    def authorized(self, request: web.Request) -> bool:
        """Whether the request carries ``Authorization: Token <key>`` exactly."""
        return request.headers.get("Authorization") == f"Token {API_KEY}"

    def unauthorized(self, request: web.Request) -> web.Response:
        """401 ``INVALID_AUTH``, quoting the credentials it got (as a careless
        gateway might), so that the tests see the client keep them out of its errors."""
        got = request.headers.get("Authorization", "nothing")
        return error_reply(401, "INVALID_AUTH", f"Invalid credentials ({got}).")

    async def projects(self, request: web.Request) -> web.Response:
        """``GET /v1/projects``: what the providers' prewarm calls to check the key."""
        if not self.authorized(request):
            return self.unauthorized(request)
        return web.json_response({"projects": [{"project_id": "p-1", "name": "Test"}]})


def error_reply(status: int, code: str, message: str) -> web.Response:
    """Deepgram's error reply: a JSON body and the debugging headers."""
    request_id = str(uuid.uuid4())
    body = {"err_code": code, "err_msg": message, "request_id": request_id}
    headers = {"dg-error": message, "dg-request-id": request_id}
    return web.json_response(body, status=status, headers=headers)


def loud(samples: np.ndarray[Any, np.dtype[np.int16]]) -> bool:
    """Whether a window of samples is speech (by its RMS)."""
    if not len(samples):
        return False
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) > SPEECH_THRESHOLD


def is_bool(value: str | None) -> bool:
    """Whether a query value is a boolean the API takes."""
    return value in (None, "true", "false")


def tone(text: str, rate: int = 24_000, seconds_per_char: float = 0.05) -> bytes:
    """The PCM the speak server says for ``text``: a 220 Hz tone, 50 ms per character."""
    samples = int(rate * seconds_per_char * len(text))
    wave = 8000 * np.sin(2 * np.pi * 220 * np.arange(samples) / rate)
    return wave.astype("<i2").tobytes()
