"""A scripted audio API server, written from the public API reference.

- ``POST /v1/audio/transcriptions``: multipart form (``file``, ``model``,
  ``language``, ``prompt``, ``response_format``, ``temperature``); answers
  ``json`` (``{"text", "usage"}``), ``verbose_json`` (``task``, ``language``,
  ``duration``, ``text``, ``segments``) or ``text`` (plain body).
- ``POST /v1/audio/speech``: JSON body (``model``, ``input``, ``voice``,
  ``response_format``, ``speed``, ``instructions``); streams raw 24 kHz
  16-bit mono PCM in chunks of irregular, odd sizes.

Both check the bearer key and the request shape like the real service (400
with an ``{"error": {...}}`` body) and record every request for the tests to
assert on. The server runs on its own loop in a thread, so it serves tests
that use ``asyncio.run`` (the conformance suites) as well as async tests.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import threading
import wave
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

API_KEY = "sk-test-audio-key"
SPEECH_RATE = 24_000
SECONDS_PER_CHAR = 0.05
CHUNK_SIZES = (1, 999, 37, 4801, 3, 333, 1441, 7, 2047)
SILENCE_PEAK = 500
GPT4O_ONLY_JSON = ("gpt-4o-transcribe", "gpt-4o-mini-transcribe")


def speech_pcm(text: str, speed: float = 1.0) -> bytes:
    """The PCM the server speaks for ``text``: a 220 Hz tone, 50 ms per character."""
    samples = int(SPEECH_RATE * SECONDS_PER_CHAR * len(text) / speed)
    tone = 8000 * np.sin(2 * np.pi * 220 * np.arange(samples) / SPEECH_RATE)
    return tone.astype("<i2").tobytes()


@dataclass
class Behaviour:
    """What the next requests get (reset per test).

    Attributes:
        transcript: Text returned for audio with speech in it.
        status: Answer every request with this HTTP error status.
        hang: Never answer (until the server stops).
        hold_after: Speech: after this many bytes, wait for :meth:`AudioServer.release`.
        drop_after: Speech: after this many bytes, drop the connection.
        stall_after: Speech: after this many bytes, send nothing more.
        endless: Speech: stream until the client goes away.
        content_type: Speech: the response's content type.
    """

    transcript: str = "hello world"
    status: int | None = None
    hang: bool = False
    hold_after: int | None = None
    drop_after: int | None = None
    stall_after: int | None = None
    endless: bool = False
    content_type: str = "audio/pcm"


@dataclass
class Upload:
    """One transcription request as received."""

    headers: dict[str, str]
    fields: dict[str, str]
    filename: str | None = None
    file_type: str | None = None
    file: bytes = b""
    wav: dict[str, int] = field(default_factory=dict)


@dataclass
class SpeechRequest:
    """One speech request as received."""

    headers: dict[str, str]
    body: dict[str, Any]


class AudioServer:
    """Use as ``with AudioServer() as server``; ``server.base_url`` ends in ``/v1``."""

    def __init__(self) -> None:
        self.base_url = ""
        self.behaviour = Behaviour()
        self.uploads: list[Upload] = []
        self.speeches: list[SpeechRequest] = []
        self.received = threading.Event()
        self.holding = threading.Event()
        self.finished = threading.Event()
        self.disconnected = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self._gate: asyncio.Event | None = None

    def __enter__(self) -> AudioServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def reset(self, **behaviour: Any) -> None:
        """Forget recorded requests and set the behaviour for the next ones."""
        self.behaviour = Behaviour(**behaviour)
        self.uploads.clear()
        self.speeches.clear()
        self.received.clear()
        self.holding.clear()
        self.finished.clear()
        self.disconnected.clear()
        self._loop.call_soon_threadsafe(self._new_gate)

    def release(self) -> None:
        """Let a speech response held by ``hold_after`` go on."""
        self._loop.call_soon_threadsafe(lambda: self._gate and self._gate.set())

    def _new_gate(self) -> None:
        self._gate = asyncio.Event()

    async def _start(self) -> None:
        self._stopping = asyncio.Event()
        self._new_gate()
        app = web.Application(client_max_size=30 * 1024 * 1024)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_post("/v1/audio/speech", self._speech)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"

    async def _stop(self) -> None:
        assert self._stopping is not None and self._runner is not None
        self._stopping.set()
        if self._gate is not None:
            self._gate.set()
        await self._runner.cleanup()

    async def _refuse(self, request: web.Request) -> web.Response | None:
        """The error answer for a bad key, a scripted status or a hang, if any."""
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        if self.behaviour.hang:
            assert self._stopping is not None
            await self._stopping.wait()
            return _error(503, "server stopping")
        if self.behaviour.status is not None:
            code = {429: "rate_limit_exceeded", 500: "server_error"}.get(self.behaviour.status)
            return _error(self.behaviour.status, f"scripted {self.behaviour.status}", code)
        return None

    # -- transcriptions -------------------------------------------------------
    async def _transcriptions(self, request: web.Request) -> web.StreamResponse:
        if not request.content_type.startswith("multipart/form-data"):
            return _error(400, "Content-Type must be multipart/form-data")
        upload = Upload(headers=dict(request.headers), fields={})
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                upload.filename, upload.file_type = value.filename, value.content_type
                upload.file = value.file.read()
            else:
                upload.fields[name] = str(value)
        self.uploads.append(upload)
        self.received.set()
        refused = await self._refuse(request)
        if refused is not None:
            return refused
        if not upload.file or "model" not in upload.fields:
            return _error(400, "'file' and 'model' are required", param="file")
        try:
            samples = _read_wav(upload)
        except (wave.Error, EOFError):
            return _error(400, "Invalid file format.", param="file")
        duration = upload.wav["frames"] / upload.wav["rate"]
        if duration < 0.1:
            return _error(400, "Audio file is too short. Minimum audio length is 0.1 seconds.")
        fmt = upload.fields.get("response_format", "json")
        if fmt != "json" and upload.fields["model"] in GPT4O_ONLY_JSON:
            return _error(400, f"response_format '{fmt}' is not compatible with this model")
        temperature = float(upload.fields.get("temperature", 0))
        if not 0 <= temperature <= 1:
            return _error(400, "temperature must be between 0 and 1", param="temperature")
        silent = not len(samples) or int(np.abs(samples.astype(np.int32)).max()) <= SILENCE_PEAK
        text = "" if silent else self.behaviour.transcript
        if fmt == "text":
            return web.Response(text=text + "\n", content_type="text/plain")
        if fmt == "json":
            usage = {"type": "duration", "seconds": duration}
            return web.json_response({"text": text, "usage": usage})
        if fmt != "verbose_json":
            return _error(400, f"unsupported response_format '{fmt}'", param="response_format")
        # Whisper decodes silence into a stock phrase, flagged by its segment scores.
        segment_text, no_speech, logprob = (" Thank you.", 0.93, -1.4) if silent else (text, 0.01, -0.2)
        segment = {
            "id": 0,
            "seek": 0,
            "start": 0.0,
            "end": duration,
            "text": segment_text,
            "tokens": [1, 2, 3],
            "temperature": 0.0,
            "avg_logprob": logprob,
            "compression_ratio": 1.0,
            "no_speech_prob": no_speech,
        }
        return web.json_response(
            {
                "task": "transcribe",
                "language": "english",
                "duration": duration,
                "text": segment_text,
                "segments": [segment],
                "usage": {"type": "duration", "seconds": duration},
            }
        )

    # -- speech ---------------------------------------------------------------
    async def _speech(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "body must be JSON")
        self.speeches.append(SpeechRequest(headers=dict(request.headers), body=body))
        self.received.set()
        refused = await self._refuse(request)
        if refused is not None:
            return refused
        for name in ("model", "input", "voice"):
            if not isinstance(body.get(name), str) or not body[name]:
                return _error(400, f"'{name}' is required", param=name)
        if len(body["input"]) > 4096:
            return _error(400, "input is longer than 4096 characters", param="input")
        if body.get("response_format", "mp3") not in ("mp3", "opus", "aac", "flac", "wav", "pcm"):
            return _error(400, "unsupported response_format", param="response_format")
        speed = body.get("speed", 1.0)
        if not 0.25 <= speed <= 4.0:
            return _error(400, "speed must be between 0.25 and 4.0", param="speed")
        response = web.StreamResponse(headers={"Content-Type": self.behaviour.content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            await self._stream_pcm(request, response, speech_pcm(body["input"], speed))
        except (ConnectionError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        return response

    async def _stream_pcm(self, request: web.Request, response: web.StreamResponse, pcm: bytes) -> None:
        b = self.behaviour
        sent = 0
        sizes = itertools.cycle(CHUNK_SIZES)
        while sent < len(pcm) or b.endless:
            chunk = pcm[sent : sent + next(sizes)] if sent < len(pcm) else bytes(2047)
            await response.write(chunk)
            sent += len(chunk)
            if b.hold_after is not None and sent >= b.hold_after and not self.holding.is_set():
                self.holding.set()
                assert self._gate is not None
                await self._gate.wait()
            if b.drop_after is not None and sent >= b.drop_after:
                assert request.transport is not None
                request.transport.abort()
                return
            if b.stall_after is not None and sent >= b.stall_after:
                assert self._stopping is not None
                await self._stopping.wait()
                return
            await asyncio.sleep(0.001)
        await response.write_eof()
        self.finished.set()


def _read_wav(upload: Upload) -> np.ndarray[Any, np.dtype[np.int16]]:
    with wave.open(io.BytesIO(upload.file)) as wav:
        upload.wav = {
            "rate": wav.getframerate(),
            "channels": wav.getnchannels(),
            "width": wav.getsampwidth(),
            "frames": wav.getnframes(),
        }
        data = wav.readframes(wav.getnframes())
    if upload.wav["width"] != 2 or len(data) != 2 * upload.wav["frames"] * upload.wav["channels"]:
        raise wave.Error("truncated or not 16-bit")
    return np.frombuffer(data, dtype="<i2")


def _error(status: int, message: str, code: str | None = None, param: str | None = None) -> web.Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status)
