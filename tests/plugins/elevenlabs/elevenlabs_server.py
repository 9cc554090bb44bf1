"""A protocol server for the ElevenLabs text-to-speech API, written from its public reference.

Based on the AsyncAPI and OpenAPI descriptions in the elevenlabs-docs
repository (``fern/apis/api/asyncapi.yml``: ``stream-input`` query
parameters, ``InitializeConnection`` / ``SendText`` / ``CloseConnection``,
``AudioOutput`` with ``alignment`` and ``normalizedAlignment``
(``chars``, ``charStartTimesMs``, ``charsDurationsMs``), ``FinalOutput``),
the "API - Error Code 400 or 401" help article (``{"detail": {"status":
"invalid_api_key" | "quota_exceeded" | "voice_not_found", "message"}}``),
and the behaviour reported in public issues: an idle socket is closed with
1008 and the reason "Have not received a new text input within the timeout
of 20 seconds..." cut to the 123 bytes a close reason may have, a refused
key or an exhausted quota also closes with 1008, a model the socket does
not serve is refused at the handshake with 403.

- ``GET /v1/text-to-speech/{voice_id}/stream-input`` (WebSocket): checks the
  query, the ``xi-api-key`` header and every message (:mod:`elevenlabs_shapes`);
  buffers text and speaks it on ``flush``, when the chunk schedule is met,
  or at ``{"text": ""}``, then sends ``{"isFinal": true}`` and closes (1000).
- ``POST /v1/text-to-speech/{voice_id}/stream``: checks header, query and
  body; streams raw PCM in irregular chunks.
- ``GET /v1/voices/{voice_id}``: the voice (``prewarm``).

Speech is a tone of ``MS_PER_CHAR`` per character of the text spoken (the
alignment's characters, a leading space included), then ``trailing_ms`` of
silence that no character covers. A
malformed request is answered as the service would and recorded in
:attr:`ElevenLabsServer.violations`, which the tests' fixture asserts empty.
The server runs on its own loop in a thread, for ``asyncio.run`` tests too.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web
from elevenlabs_shapes import (
    HTTP_PARAMS,
    SOCKET_PARAMS,
    check_first_message,
    check_http_body,
    check_query,
    check_text_message,
    detail,
)

API_KEY = "xi-test-5f3c9e1a7b2d4c60"
VOICE = "voice-test-1"
MS_PER_CHAR = 20
DEFAULT_SCHEDULE = [120, 160, 250, 290]
IDLE_REASON = (
    "Have not received a new text input within the timeout of {seconds} seconds. Streaming input terminated. "
    "Please make sure to either feed the input in the timely manner, or to send the end of input text "
    '(empty string "") when done.'
)


def _tone(samples: int, rate: int) -> bytes:
    return (8000 * np.sin(2 * np.pi * 220 * np.arange(samples) / rate)).astype("<i2").tobytes()


def speech_pcm(text: str, rate: int) -> bytes:
    """The PCM spoken for ``text`` (white space collapsed): ``MS_PER_CHAR`` of tone per character."""
    return _tone(rate * MS_PER_CHAR // 1000 * len(" ".join(text.split())), rate)


def rate_of(query: dict[str, str]) -> int:
    fmt = query.get("output_format", "pcm_24000")
    return int(fmt.removeprefix("pcm_")) if fmt.startswith("pcm_") else 24_000


@dataclass
class Behaviour:
    """How the server answers (reset per test). Times are seconds."""

    first_audio_delay: float = 0.0  # before the first audio of each generation
    chunk_ms: int = 100  # audio per message
    chunk_interval: float = 0.0  # pause between audio messages
    durations_key: str = "charsDurationsMs"
    alignment: bool = True  # False: no alignment at all
    leading_space: bool = True  # alignment starts with a space, as the service's does
    trailing_ms: int = 0  # silence after each generation's last character (the service's audio has some)
    endless: bool = False  # socket: audio until the client closes
    handshake_status: int | None = None
    close_after_messages: int | None = None  # close once this many client messages arrived
    close_after_chunks: int | None = None  # close after this many audio messages
    close_code: int = 1008
    close_reason: str = ""
    error_message: dict[str, Any] | None = None  # sent just before that close
    http_status: int | None = None
    http_body: Any = None
    http_first_byte_delay: float = 0.0
    http_drop_after: int | None = None
    http_endless: bool = False
    http_content_type: str = "audio/pcm"


@dataclass
class SocketSession:
    """One input-streaming connection as the server saw it."""

    voice: str
    query: dict[str, str]
    headers: dict[str, str]
    messages: list[Any] = field(default_factory=list)
    generations: list[str] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    ended: bool = False  # {"text": ""} arrived
    final_sent: bool = False
    server_closing: bool = False  # the server began closing the socket (its end, or a failure it plays)
    closed_by_client: bool = False  # the client closed before the audio was all sent
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class SpeechRequest:
    """One ``POST .../stream`` as received."""

    voice: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class ElevenLabsServer:
    """The server; ``with ElevenLabsServer() as server:``, ``server.url`` as ``base_url``."""

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.behaviour = Behaviour()
        self.sockets: list[SocketSession] = []
        self.speeches: list[SpeechRequest] = []
        self.violations: list[str] = []
        self.http_disconnected = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.behaviour = Behaviour()
        self.sockets.clear()
        self.speeches.clear()
        self.violations.clear()
        self.http_disconnected.clear()

    def __enter__(self) -> ElevenLabsServer:
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._serve()), name="elevenlabs-server", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_get("/v1/text-to-speech/{voice_id}/stream-input", self._socket)
        app.router.add_post("/v1/text-to-speech/{voice_id}/stream", self._speech)
        app.router.add_get("/v1/voices/{voice_id}", self._voice)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    def _authorized(self, headers: dict[str, str], where: str) -> bool:
        if "xi-api-key" not in headers:
            self.violations.append(f"{where}: no xi-api-key header")
        return headers.get("xi-api-key") == self.api_key

    # -- WebSocket ---------------------------------------------------------------
    async def _socket(self, request: web.Request) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        session = SocketSession(request.match_info["voice_id"], dict(request.query), headers)
        self.sockets.append(session)
        self.violations += [f"socket: {p}" for p in check_query(session.query, SOCKET_PARAMS)]
        b = self.behaviour
        if b.handshake_status is not None:
            session.done.set()
            body = detail("model_not_supported", "This model is not available over the WebSocket")
            return web.json_response(body, status=b.handshake_status)
        ws = web.WebSocketResponse(max_msg_size=2**20)
        await ws.prepare(request)
        try:
            await self._converse(ws, session)
        finally:
            session.done.set()
        return ws

    async def _converse(self, ws: web.WebSocketResponse, session: SocketSession) -> None:
        b = self.behaviour
        jobs: asyncio.Queue[str | None] = asyncio.Queue()
        producer = asyncio.get_running_loop().create_task(self._produce(ws, session, jobs))
        idle = int(session.query.get("inactivity_timeout", "20"))
        auto = session.query.get("auto_mode") == "true"
        authorized = self._authorized(session.headers, "socket")
        buffer, schedule, generated = "", DEFAULT_SCHEDULE, 0
        try:
            while True:
                try:
                    message = await asyncio.wait_for(ws.receive(), idle if not session.ended else None)
                except TimeoutError:
                    reason = IDLE_REASON.format(seconds=idle)
                    await ws.send_json({"message": reason, "error": "input_timeout_exceeded", "code": 1008})
                    await ws.close(code=1008, message=reason.encode()[:123])
                    return
                if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    session.closed_by_client = not (session.final_sent or session.server_closing)
                    return
                if message.type is not WSMsgType.TEXT:
                    self.violations.append("socket: a binary frame (the API takes JSON text)")
                    await ws.close(code=1003, message=b"binary frames are not supported")
                    return
                try:
                    data = json.loads(message.data)
                except ValueError:
                    self.violations.append(f"socket: a message that is not JSON: {message.data[:60]!r}")
                    continue
                session.messages.append(data)
                count = len(session.messages)
                if session.ended:
                    self.violations.append(f"socket: a message after the end of input: {data!r}")
                    continue
                first = count == 1
                self.violations += [
                    f"socket: {p}" for p in (check_first_message if first else check_text_message)(data)
                ]
                if first and not authorized:
                    await ws.close(code=1008, message=b"Invalid API key")
                    return
                if b.close_after_messages == count:
                    if b.error_message is not None:
                        await ws.send_json(b.error_message)
                    await ws.close(code=b.close_code, message=b.close_reason.encode()[:123])
                    return
                if first:
                    schedule = (data.get("generation_config") or {}).get("chunk_length_schedule") or schedule
                    continue
                text = data.get("text")
                if not isinstance(text, str):
                    continue
                if text == "":
                    session.ended = True
                    if buffer.strip():
                        jobs.put_nowait(buffer)
                    jobs.put_nowait(None)
                    buffer = ""
                    continue
                buffer += text
                due = schedule[min(generated, len(schedule) - 1)]
                trigger = data.get("try_trigger_generation") is True and len(buffer) >= 50
                if (data.get("flush") is True or auto or trigger or len(buffer) >= due) and buffer.strip():
                    jobs.put_nowait(buffer)
                    buffer, generated = "", generated + 1
        finally:
            # Cancelling a close() half-way would drop the connection instead
            # (and the client's unread messages with it, a race a real server does not have).
            if not (session.final_sent or session.server_closing):
                producer.cancel()
            await asyncio.wait([producer])

    async def _produce(
        self, ws: web.WebSocketResponse, session: SocketSession, jobs: asyncio.Queue[str | None]
    ) -> None:
        b = self.behaviour
        rate = rate_of(session.query)
        sync = session.query.get("sync_alignment") == "true"
        sent = 0
        try:
            while True:
                text = await jobs.get()
                if text is None:
                    await ws.send_json({"audio": None, "isFinal": True, "normalizedAlignment": None, "alignment": None})
                    session.final_sent = session.server_closing = True
                    await ws.close(code=1000)
                    return
                session.generations.append(text)
                spoken = " ".join(text.split())
                chars = ([" "] if b.leading_space else []) + list(spoken)
                per_char = rate * MS_PER_CHAR // 1000
                pcm = _tone(len(chars) * per_char, rate) + bytes(2 * (rate * b.trailing_ms // 1000))
                step = rate * b.chunk_ms // 1000
                if b.first_audio_delay:
                    await asyncio.sleep(b.first_audio_delay)
                repeat = 0
                while repeat == 0 or (b.endless and not ws.closed):
                    for index, offset in enumerate(range(0, len(pcm) // 2, step)):
                        piece = pcm[2 * offset : 2 * (offset + step)]
                        message: dict[str, Any] = {"audio": base64.b64encode(piece).decode(), "isFinal": None}
                        span: list[int] = []
                        if b.alignment and repeat == 0:
                            if sync:
                                span = [i for i in range(len(chars)) if offset <= i * per_char < offset + step]
                            elif index == 0:
                                span = list(range(len(chars)))
                        alignment = None
                        if span:
                            alignment = {
                                "chars": [chars[i] for i in span],
                                "charStartTimesMs": [round((i * per_char - offset) * 1000 / rate) for i in span],
                                b.durations_key: [MS_PER_CHAR for _ in span],
                            }
                        message["alignment"] = message["normalizedAlignment"] = alignment
                        await ws.send_json(message)
                        session.audio += piece
                        sent += 1
                        if b.close_after_chunks == sent:
                            session.server_closing = True
                            if b.error_message is not None:
                                await ws.send_json(b.error_message)
                            await ws.close(code=b.close_code, message=b.close_reason.encode()[:123])
                            return
                        if b.chunk_interval:
                            await asyncio.sleep(b.chunk_interval)
                    repeat += 1
        except (ConnectionError, RuntimeError):
            session.closed_by_client = not session.final_sent

    # -- HTTP --------------------------------------------------------------------
    async def _speech(self, request: web.Request) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        self.speeches.append(SpeechRequest(request.match_info["voice_id"], dict(request.query), headers, body))
        if not headers.get("content-type", "").startswith("application/json"):
            self.violations.append("speech: the body is not sent as application/json")
        problems = check_query(dict(request.query), HTTP_PARAMS) + check_http_body(body)
        if not self._authorized(headers, "speech"):
            return web.json_response(detail("invalid_api_key", "Invalid API key"), status=401)
        if problems:
            self.violations += [f"speech: {p}" for p in problems]
            errors = [{"loc": ["body"], "msg": p, "type": "value_error"} for p in problems]
            return web.json_response({"detail": errors}, status=422)
        b = self.behaviour
        if b.http_status is not None:
            return web.json_response(b.http_body if b.http_body is not None else {}, status=b.http_status)
        pcm = speech_pcm(body["text"], rate_of(dict(request.query)))
        response = web.StreamResponse(headers={"Content-Type": b.http_content_type})
        await response.prepare(request)
        if b.http_first_byte_delay:
            await asyncio.sleep(b.http_first_byte_delay)
        sizes, position, written = (1, 4799, 37, 9601, 3, 2047), 0, 0
        try:
            while position < len(pcm) or b.http_endless:
                size = sizes[written % len(sizes)]
                chunk = pcm[position : position + size] if position < len(pcm) else pcm[:size]
                position += size
                written += 1
                if b.http_drop_after is not None and position > b.http_drop_after:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                await response.write(chunk)
                if b.http_endless:
                    await asyncio.sleep(0.005)
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            self.http_disconnected.set()
            raise
        return response

    async def _voice(self, request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if not self._authorized(headers, "voices"):
            return web.json_response(detail("invalid_api_key", "Invalid API key"), status=401)
        if request.match_info["voice_id"] != VOICE:
            return web.json_response(detail("voice_not_found", "A voice with that ID was not found."), status=400)
        return web.json_response({"voice_id": VOICE, "name": "Test voice"})
