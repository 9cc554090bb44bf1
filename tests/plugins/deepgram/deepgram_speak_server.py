"""A Deepgram ``/v1/speak`` server: the REST endpoint and the Speak WebSocket.

Written from Deepgram's public API reference (Text to Speech REST "speak",
"Media Output Settings" encoding/container/sample rate; the Speak WebSocket
AsyncAPI "speak.v1" with its Speak, Flush, Clear and Close messages and the
Flushed, Cleared, Metadata and Warning replies; "TTS Troubleshooting
WebSocket, NET, and DATA Errors"). It asserts what the real service requires:

- ``Authorization: Token <key>`` (else 401 ``INVALID_AUTH``);
- REST: ``POST`` with ``Content-Type: application/json`` and the body
  ``{"text": ...}`` only, 1..2000 characters; known query parameters;
  ``encoding=linear16`` with a supported ``sample_rate`` and ``container``
  ``none`` or ``wav`` (else 400 with ``err_code``/``err_msg``);
- WebSocket: the query parameters the channel takes (no ``container``);
  JSON text messages only (binary: close ``1003 MESSAGE-0000``):
  ``{"type": "Speak", "text"}`` (at most 2000 characters), ``Flush``,
  ``Clear``, ``Close``; anything else closes with ``1008 DATA-0000``; more
  than 20 flushes a minute get a ``Warning`` and are not processed.

Audio is raw 24 kHz linear16 (a tone, 50 ms per character), sent in chunks
of odd sizes after ``first_byte_delay`` seconds; ``Flushed`` (with a
``sequence_id``) follows a flush's audio, ``Cleared`` a clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from deepgram_server_base import ThreadedServer, error_reply, tone

RATES = ("8000", "16000", "24000", "32000", "48000")
REST_PARAMS = {"model", "encoding", "sample_rate", "container", "bit_rate", "callback", "callback_method", "tag",
               "mip_opt_out", "speed"}  # fmt: skip
WS_PARAMS = {"model", "encoding", "sample_rate", "mip_opt_out", "speed"}
CHUNKS = (4801, 999, 37, 2047, 3, 1441)
MAX_CHARS = 2000
FLUSHES_PER_MINUTE = 20


@dataclass
class Behaviour:
    """What the next requests and connections get (reset per test).

    Attributes:
        status: Refuse every request and upgrade with this HTTP status.
        first_byte_delay: Seconds before the first audio of a request or flush.
        chunk_delay: Seconds between audio chunks.
        close_after: WebSocket: close after this many audio bytes, with
            ``close_code``/``close_reason``.
        idle_close: WebSocket: close (1011 ``NET-0001``) after this many
            seconds without a message from the client.
    """

    status: int | None = None
    first_byte_delay: float = 0.0
    chunk_delay: float = 0.001
    close_after: int | None = None
    close_code: int = 1011
    close_reason: str = "NET-0003"
    idle_close: float | None = None


@dataclass
class SpeakConnection:
    """One Speak WebSocket as received."""

    params: dict[str, str]
    messages: list[dict[str, Any]] = field(default_factory=list)
    spoken: list[str] = field(default_factory=list)
    audio_bytes: int = 0
    cleared: int = 0
    closed_by_client: bool = False


class SpeakServer(ThreadedServer):
    """``/v1/speak`` (POST and WebSocket) and ``/v1/projects``."""

    def __init__(self) -> None:
        super().__init__()
        self.behaviour = Behaviour()
        self.requests: list[dict[str, Any]] = []
        self.connections: list[SpeakConnection] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/speak", self._rest)
        app.router.add_get("/v1/speak", self._socket)
        app.router.add_get("/v1/projects", self.projects)

    def reset(self, **behaviour: Any) -> None:
        """Forget what was received and set the behaviour for the next requests."""
        self.behaviour = Behaviour(**behaviour)
        self.requests.clear()
        self.connections.clear()
        self.violations.clear()

    def _refusal(self, request: web.Request, allowed: set[str]) -> web.Response | None:
        if not self.authorized(request):
            return self.unauthorized(request)
        if self.behaviour.status is not None:
            return error_reply(self.behaviour.status, "SCRIPTED", f"scripted {self.behaviour.status}")
        params = dict(request.query)
        problem = None
        if set(params) - allowed:
            problem = f"unknown query parameters {sorted(set(params) - allowed)}"
        elif not params.get("model", "").startswith("aura"):
            problem = f"model={params.get('model')!r} is not an Aura voice"
        elif params.get("encoding") != "linear16":
            problem = f"encoding={params.get('encoding')!r}: raw PCM needs linear16"
        elif params.get("sample_rate") not in RATES:
            problem = f"sample_rate={params.get('sample_rate')!r} is not supported for linear16"
        elif "container" in params and params["container"] not in ("none", "wav"):
            problem = f"container={params['container']!r} does not go with linear16"
        if problem:
            self.violation(problem)
            return error_reply(400, "INVALID_QUERY_PARAMETER", problem)
        return None

    # -- REST -----------------------------------------------------------------------------
    async def _rest(self, request: web.Request) -> web.StreamResponse:
        refused = self._refusal(request, REST_PARAMS)
        if refused is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.requests.append({"params": dict(request.query), "body": body, "headers": dict(request.headers)})
        if request.content_type != "application/json":
            self.violation(f"Content-Type {request.content_type!r} is not application/json")
        problem = _text_problem(body, {"text"})
        if problem:
            self.violation(f"REST body: {problem}")
            return error_reply(400, "INVALID_REQUEST_BODY", problem)
        pcm = tone(body["text"], int(request.query["sample_rate"]))
        if request.query.get("container", "wav") == "wav":
            pcm = _wav_header(len(pcm), int(request.query["sample_rate"])) + pcm
        response = web.StreamResponse(headers={"Content-Type": "audio/wav", "dg-request-id": str(uuid.uuid4())})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await asyncio.sleep(self.behaviour.first_byte_delay)
        sizes = itertools.cycle(CHUNKS)
        sent = 0
        with contextlib.suppress(ConnectionError):
            while sent < len(pcm):
                size = next(sizes)
                await response.write(pcm[sent : sent + size])
                sent += size
                await asyncio.sleep(self.behaviour.chunk_delay)
            await response.write_eof()
        return response

    # -- WebSocket -----------------------------------------------------------------------
    async def _socket(self, request: web.Request) -> web.StreamResponse:
        refused = self._refusal(request, WS_PARAMS)
        if refused is not None:
            return refused
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = SpeakConnection(dict(request.query))
        self.connections.append(conn)
        rate = int(request.query["sample_rate"])
        await ws.send_json(
            {"type": "Metadata", "request_id": str(uuid.uuid4()), "model_name": request.query["model"],
             "model_version": "2025-01-01.0", "model_uuid": str(uuid.uuid4())}
        )  # fmt: skip
        jobs: asyncio.Queue[str | None] = asyncio.Queue()
        speaker = asyncio.get_running_loop().create_task(self._speak(ws, conn, jobs, rate))
        buffer: list[str] = []
        flushes: list[float] = []
        sequence = itertools.count()
        try:
            while True:
                try:
                    msg = await ws.receive(timeout=self.behaviour.idle_close)
                except TimeoutError:
                    await ws.close(code=1011, message=b"NET-0001")
                    break
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                if msg.type is WSMsgType.BINARY:
                    self.violation("a binary message on the Speak WebSocket")
                    await ws.close(code=1003, message=b"MESSAGE-0000")
                    break
                if msg.type is not WSMsgType.TEXT:
                    break
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    data = None
                kind = data.get("type") if isinstance(data, dict) else None
                conn.messages.append(data if isinstance(data, dict) else {"raw": msg.data})
                if kind == "Speak":
                    problem = _text_problem(data, {"type", "text"})
                    if problem:
                        self.violation(f"Speak: {problem}")
                        await ws.close(code=1008, message=b"DATA-0000")
                        break
                    buffer.append(data["text"])
                elif kind == "Flush" and set(data) == {"type"}:
                    now = asyncio.get_running_loop().time()
                    flushes[:] = [t for t in flushes if t > now - 60] + [now]
                    if len(flushes) > FLUSHES_PER_MINUTE:
                        self.violation("more than 20 flushes in 60 s")
                        await ws.send_json({"type": "Warning", "code": "FLUSH_LIMIT", "description": "too many"})
                        continue
                    text, buffer[:] = "".join(buffer), []
                    conn.spoken.append(text)
                    jobs.put_nowait(text)
                    jobs.put_nowait(f"\x00{next(sequence)}")
                elif kind == "Clear" and set(data) == {"type"}:
                    buffer.clear()
                    conn.cleared += 1
                    speaker.cancel()
                    await asyncio.gather(speaker, return_exceptions=True)
                    jobs = asyncio.Queue()
                    speaker = asyncio.get_running_loop().create_task(self._speak(ws, conn, jobs, rate))
                    await ws.send_json({"type": "Cleared", "sequence_id": next(sequence)})
                elif kind == "Close" and set(data) == {"type"}:
                    conn.closed_by_client = True
                    await ws.close(code=1000)
                    break
                else:
                    self.violation(f"a message the Speak WebSocket does not take: {msg.data[:80]!r}")
                    await ws.close(code=1008, message=b"DATA-0000")
                    break
        finally:
            speaker.cancel()
            await asyncio.gather(speaker, return_exceptions=True)
        return ws

    async def _speak(self, ws: web.WebSocketResponse, conn: SpeakConnection, jobs: Any, rate: int) -> None:
        b = self.behaviour
        while True:
            job = await jobs.get()
            if job.startswith("\x00"):
                await ws.send_json({"type": "Flushed", "sequence_id": int(job[1:])})
                continue
            pcm = tone(job, rate)
            await asyncio.sleep(b.first_byte_delay)
            sizes = itertools.cycle(CHUNKS)
            sent = 0
            while sent < len(pcm):
                chunk = pcm[sent : sent + next(sizes)]
                await ws.send_bytes(chunk)
                sent += len(chunk)
                conn.audio_bytes += len(chunk)
                if b.close_after is not None and conn.audio_bytes >= b.close_after:
                    await ws.close(code=b.close_code, message=b.close_reason.encode())
                    return
                await asyncio.sleep(b.chunk_delay)


def _text_problem(body: Any, keys: set[str]) -> str | None:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if set(body) != keys:
        return f"the fields must be {sorted(keys)}, not {sorted(body)}"
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return "text must be a non-empty string"
    if len(text) > MAX_CHARS:
        return f"text is {len(text)} characters, over the {MAX_CHARS} limit"
    return None


def _wav_header(size: int, rate: int) -> bytes:
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + size, b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16, b"data", size
    )
