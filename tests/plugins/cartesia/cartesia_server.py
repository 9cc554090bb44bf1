"""A local Cartesia TTS server: ``/tts/websocket`` with contexts, and ``POST /tts/bytes``.

It speaks the protocol of Cartesia's API reference (the rules and their
sources are in :mod:`cartesia_protocol`) and records every breach of it in
:attr:`CartesiaServer.violations`, which a test asserts empty: a client
that sends a malformed request fails the test even when the server still
answers. Audio is a tone per word (:func:`cartesia_protocol.speech_pcm`).

Use it in the test's event loop (``async with CartesiaServer() as server``)
or in a thread of its own (``with CartesiaServer() as server``, for checks
that run their own loops). Point a provider at ``server.url``:
``CartesiaTTS(api_key=API_KEY, base_url=server.url, _env_file=None)``. From
another test directory, put this one on ``sys.path`` first (the server
imports its sibling modules :mod:`cartesia_protocol` and :mod:`cartesia_ws`).

Failure modes (constructor arguments, also settable later):
``refuse_status`` refuses the WebSocket handshake and the HTTP request with
that status (401: a bad key); ``fail_status`` answers each context's first
input with an ``error`` message of that ``status_code`` (the HTTP request
with that status); ``close_after_chunks`` drops the connection after that
many chunks (``close_code`` None: abruptly, no close frame; else a close
frame with that code); ``first_chunk_delay`` and ``chunk_interval`` pace
the audio; ``hold_after_chunks`` stops a context's audio after that many
chunks until :meth:`CartesiaServer.release`; ``context_expiry`` ends a
context left without input that long after its audio. ``send_flush_ids``
and ``first_flush_id`` vary how chunks name their sentence.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web
from cartesia_protocol import auth_problem, generation_problems, speech_pcm, version_problem
from cartesia_ws import ContextRecord, Live, WebSocketConnection

API_KEY = "sk_car_test-4f1b7e2a9c3d5e60"


@dataclass
class RequestRecord:
    """A handshake or an HTTP request: its headers, query and (HTTP) body."""

    headers: dict[str, str]
    query: dict[str, str]
    body: Any = None
    disconnected: bool = False


class CartesiaServer:
    """The server; see the module docstring for the failure modes."""

    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        first_chunk_delay: float = 0.0,
        chunk_seconds: float = 0.1,
        chunk_interval: float = 0.0,
        refuse_status: int | None = None,
        fail_status: int | None = None,
        error_style: str = "2025",
        close_after_chunks: int | None = None,
        close_code: int | None = None,
        hold_after_chunks: int | None = None,
        context_expiry: float | None = None,
        send_flush_ids: bool = True,
        first_flush_id: int = 1,
        echo_key: bool = False,
    ) -> None:
        self.api_key = api_key
        self.first_chunk_delay = first_chunk_delay
        self.chunk_seconds = chunk_seconds
        self.chunk_interval = chunk_interval
        self.refuse_status = refuse_status
        self.fail_status = fail_status
        self.error_style = error_style
        self.close_after_chunks = close_after_chunks
        self.close_code = close_code
        self.hold_after_chunks = hold_after_chunks
        self.context_expiry = context_expiry
        self.send_flush_ids = send_flush_ids
        self.first_flush_id = first_flush_id
        self.echo_key = echo_key
        self.handshakes: list[RequestRecord] = []
        self.bytes_requests: list[RequestRecord] = []
        self.contexts: dict[str, ContextRecord] = {}
        self.received: list[tuple[int, dict[str, Any]]] = []  # (connection, message), in order
        self.connections = 0
        self.violations: list[str] = []
        self._live: dict[str, Live] = {}
        self._released: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The API root to give a provider as ``base_url``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The WebSocket endpoint."""
        return f"ws://127.0.0.1:{self.port}/tts/websocket"

    def context_list(self) -> list[ContextRecord]:
        """The contexts in the order they were opened."""
        return list(self.contexts.values())

    def release(self) -> None:
        """Let held audio (``hold_after_chunks``) go on."""
        if self._loop is not None and self._released is not None:
            self._loop.call_soon_threadsafe(self._released.set)

    # -- running -------------------------------------------------------------------
    async def start(self) -> None:
        """Listen on 127.0.0.1, on a free port."""
        self._loop = asyncio.get_running_loop()
        self._released = asyncio.Event()
        app = web.Application()
        app.router.add_get("/tts/websocket", self._websocket)
        app.router.add_post("/tts/bytes", self._bytes)
        # In-flight replies (a held or slow one) are cut at shutdown, not waited for.
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Stop every generation and close the listener and the connections."""
        for live in list(self._live.values()):
            if live.task is not None:
                live.task.cancel()
        if self._released is not None:
            self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> CartesiaServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __enter__(self) -> CartesiaServer:
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def serve() -> None:
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=serve, name="cartesia-server", daemon=True)
        self._thread.start()
        assert ready.wait(30), "the server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)

    # -- shared checks ----------------------------------------------------------------
    def _refusal(self, request: web.Request, record: RequestRecord, *, websocket: bool) -> web.Response | None:
        problem = version_problem(request.headers, request.query, websocket=websocket)
        if problem is not None:
            self.violations.append(problem)
            return web.json_response({"error": problem}, status=400)
        key_problem = auth_problem(request.headers, request.query, self.api_key)
        if key_problem == "":
            self.violations.append("no credentials were sent")
        if key_problem is not None or self.refuse_status is not None:
            status = self.refuse_status or 401
            text = "Invalid API key" if status in (401, 403) else "Request refused"
            if self.echo_key:
                sent = request.headers.get("X-API-Key") or request.headers.get("Authorization", "")
                text += f" (received {sent})"
            return web.json_response({"error": text, "status_code": status}, status=status)
        return None

    async def _hold(self, chunks: int) -> None:
        if self.hold_after_chunks is not None and chunks >= self.hold_after_chunks:
            assert self._released is not None
            await self._released.wait()

    # -- POST /tts/bytes ----------------------------------------------------------------
    async def _bytes(self, request: web.Request) -> web.StreamResponse:
        record = RequestRecord(dict(request.headers), dict(request.query))
        self.bytes_requests.append(record)
        refusal = self._refusal(request, record, websocket=False)
        if refusal is not None:
            return refusal
        if not request.headers.get("Content-Type", "").startswith("application/json"):
            self.violations.append("POST /tts/bytes without Content-Type: application/json")
        try:
            record.body = await request.json()
        except ValueError:
            self.violations.append("POST /tts/bytes with a body that is not JSON")
            return web.json_response({"error": "invalid JSON"}, status=400)
        problems = generation_problems(record.body, websocket=False)
        if problems:
            self.violations += [f"/tts/bytes: {p}" for p in problems]
            return web.json_response({"error": "; ".join(problems)}, status=400)
        if self.fail_status is not None:
            return web.json_response({"error": "generation failed"}, status=self.fail_status)
        body = record.body
        rate = body["output_format"]["sample_rate"]
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        await asyncio.sleep(self.first_chunk_delay)
        pcm, step = speech_pcm(body["transcript"], rate), 2 * int(rate * self.chunk_seconds)
        try:
            for sent, start in enumerate(range(0, len(pcm), step)):
                if self.close_after_chunks is not None and sent >= self.close_after_chunks:
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                await self._hold(sent)
                await asyncio.sleep(self.chunk_interval)
                await response.write(pcm[start : start + step])
            await response.write_eof()
        except asyncio.CancelledError:
            record.disconnected = True
            raise
        except ConnectionError:  # the client went away: nothing to answer
            record.disconnected = True
        return response

    # -- /tts/websocket ----------------------------------------------------------------
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        record = RequestRecord(dict(request.headers), dict(request.query))
        self.handshakes.append(record)
        refusal = self._refusal(request, record, websocket=True)
        if refusal is not None:
            return refusal
        ws = web.WebSocketResponse(max_msg_size=2**22)
        await ws.prepare(request)
        self.connections += 1
        conn = WebSocketConnection(self, self.connections, ws, request)
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await conn.handle(message.data)
                elif message.type is WSMsgType.BINARY:
                    self.violations.append("a binary frame: the API takes JSON text frames only")
                    await ws.close(code=1003, message=b"text frames only")
                    break
        finally:
            conn.stop()
        return ws
