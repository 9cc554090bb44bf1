"""A Deepgram ``/v1/listen`` server: the live WebSocket and the pre-recorded POST.

Written from Deepgram's public API reference (Live Audio AsyncAPI
"listen.v1"; the Finalize, KeepAlive and CloseStream pages; "Endpointing",
"Utterance End", "Interim Results"; "STT Troubleshooting WebSocket, NET, and
DATA Errors"; Pre-recorded Audio). It asserts what the real service requires:

- upgrade: ``Authorization: Token <key>`` (else HTTP 401), known query
  parameters only, ``encoding=linear16``, a supported ``sample_rate``,
  ``channels=1``, booleans spelled ``true``/``false``, ``endpointing`` a
  number of ms or ``false``, ``utterance_end_ms`` >= 1000 and only with
  ``interim_results=true`` (else HTTP 400 with ``dg-error``);
- audio in binary frames only, never empty (an empty frame closes the
  stream), whole 16-bit samples; a control message sent as binary is audio
  that cannot be decoded: close ``1008 DATA-0000``;
- control messages as JSON text frames: ``KeepAlive``, ``Finalize``
  (optional ``channel``), ``CloseStream``; anything else gets an ``Error``
  message with ``variant: SchemaError``; nothing may follow ``CloseStream``;
- no audio and no KeepAlive for ``idle_timeout`` seconds: close
  ``1011 NET-0001``.

It "recognises" speech-shaped audio by energy: each stretch of speech takes the
next scripted transcript; interim ``Results`` reveal its words as audio
arrives; ``endpointing`` ms of silence give ``is_final`` + ``speech_final``;
``utterance_end_ms`` after the last word gives ``UtteranceEnd``; speech onset
gives ``SpeechStarted`` (``vad_events``). ``Finalize`` finalises the audio
held (``from_finalize: true``), or answers nothing when none is held (as the
reference says may happen). ``CloseStream`` finalises, sends ``Metadata`` and
closes with 1000. Timestamps (``start``, ``duration``) are on the
connection's clock. Finals wait ``final_delay`` seconds (latency to measure).
"""

from __future__ import annotations

import asyncio
import io
import uuid
import wave
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web
from deepgram_listen_session import WINDOW, LiveSession, words_of
from deepgram_server_base import ThreadedServer, error_reply, is_bool, loud

RATES = ("8000", "16000", "24000", "32000", "44100", "48000")
BOOLEANS = ("interim_results", "vad_events", "smart_format", "punctuate", "diarize", "numerals", "multichannel")
KNOWN = {
    "callback", "callback_method", "channels", "detect_entities", "diarize", "diarize_model", "dictation",
    "encoding", "endpointing", "extra", "interim_results", "keyterm", "keywords", "language", "mip_opt_out",
    "model", "multichannel", "numerals", "profanity_filter", "punctuate", "redact", "replace", "sample_rate",
    "search", "smart_format", "tag", "utterance_end_ms", "vad_events", "version",
}  # fmt: skip


@dataclass
class Behaviour:
    """What the next connections get (reset per test).

    Attributes:
        transcripts: One per stretch of speech, in order; ``default`` after.
        status: Refuse the upgrade (and pre-recorded requests) with this status.
        drop_after: On the first ``drops`` connections, close after this many
            seconds of audio, with ``drop_code``/``drop_reason`` (code None:
            the TCP connection is cut without a close frame).
        final_delay: Seconds between the audio that makes a final and the final.
        cut_requests: Cut every connection (live or pre-recorded) without an answer.
        answer_empty_finalize: Answer a ``Finalize`` even when no audio is held.
        idle_timeout: Seconds without audio or KeepAlive before ``NET-0001``.
    """

    transcripts: list[str] = field(default_factory=list)
    default: str = "Hello world."
    status: int | None = None
    drop_after: float | None = None
    drops: int = 1
    drop_code: int | None = 1011
    drop_reason: str = "NET-0000"
    final_delay: float = 0.0
    cut_requests: bool = False
    interim_every: float = 0.3
    answer_empty_finalize: bool = False
    idle_timeout: float = 10.0


@dataclass
class Connection:
    """One live connection as received."""

    params: dict[str, str]
    headers: dict[str, str]
    query: list[tuple[str, str]] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    controls: list[str] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None


class ListenServer(ThreadedServer):
    """``/v1/listen`` (WebSocket and POST) and ``/v1/projects``."""

    def __init__(self) -> None:
        super().__init__()
        self.behaviour = Behaviour()
        self.connections: list[Connection] = []
        self.uploads: list[dict[str, Any]] = []
        self.posts = 0  # pre-recorded requests, answered or not
        self.upgrades = 0  # live upgrade requests, accepted or not
        self._dropped = 0
        self.carry: list[str] | None = None  # words of speech a dropped connection had not finalised

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/listen", self._live)
        app.router.add_post("/v1/listen", self._prerecorded)
        app.router.add_get("/v1/projects", self.projects)

    def reset(self, **behaviour: Any) -> None:
        """Forget what was received and set the behaviour for the next connections."""
        self.behaviour = Behaviour(**behaviour)
        self.connections.clear()
        self.uploads.clear()
        self.posts = 0
        self.upgrades = 0
        self.violations.clear()
        self._dropped = 0
        self.carry = None

    def next_transcript(self) -> str:
        """The words of the next stretch of speech (the same audio, resent, gets the same words)."""
        if self.carry is not None:
            words, self.carry = self.carry, None
            return " ".join(words)
        b = self.behaviour
        return b.transcripts.pop(0) if b.transcripts else b.default

    # -- the upgrade ------------------------------------------------------------------
    def _params_problem(self, params: dict[str, str], *, live: bool) -> str | None:
        unknown = sorted(set(params) - KNOWN)
        if unknown:
            return f"unknown query parameters {unknown}"
        for name in BOOLEANS:
            if not is_bool(params.get(name)):
                return f"{name}={params[name]!r} is not true/false"
        if not live:
            return None
        if params.get("encoding") != "linear16":
            return f"encoding={params.get('encoding')!r}: raw audio needs encoding=linear16"
        if params.get("sample_rate") not in RATES:
            return f"sample_rate={params.get('sample_rate')!r} is not a supported rate"
        if params.get("channels", "1") != "1":
            return "channels must be 1 for mono audio"
        endpointing = params.get("endpointing")
        if endpointing is not None and endpointing != "false" and not endpointing.isdigit():
            return f"endpointing={endpointing!r} is neither milliseconds nor false"
        utterance_end = params.get("utterance_end_ms")
        if utterance_end is not None:
            if not utterance_end.isdigit() or int(utterance_end) < 1000:
                return "utterance_end_ms must be an integer of at least 1000"
            if params.get("interim_results") != "true":
                return "utterance_end_ms needs interim_results=true"
        return None

    async def _live(self, request: web.Request) -> web.StreamResponse:
        self.upgrades += 1
        b = self.behaviour
        if b.cut_requests and request.transport is not None:
            request.transport.abort()
            return web.Response(status=500)
        if not self.authorized(request):
            return self.unauthorized(request)
        if b.status is not None:
            return error_reply(b.status, "SCRIPTED", f"scripted {b.status}")
        params = dict(request.query)
        problem = self._params_problem(params, live=True)
        if problem:
            self.violation(f"upgrade: {problem}")
            return error_reply(400, "Bad Request", problem)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Connection(params, dict(request.headers), list(request.query.items()))
        self.connections.append(conn)
        drop = b.drop_after if self._dropped < b.drops else None
        if drop is not None:
            self._dropped += 1
        session = LiveSession(self, ws, conn, drop)
        await session.run()
        return ws

    # -- pre-recorded -------------------------------------------------------------------
    async def _prerecorded(self, request: web.Request) -> web.Response:
        self.posts += 1
        if self.behaviour.cut_requests and request.transport is not None:
            request.transport.abort()
            return web.Response(status=500)
        if not self.authorized(request):
            return self.unauthorized(request)
        if self.behaviour.status is not None:
            return error_reply(self.behaviour.status, "SCRIPTED", f"scripted {self.behaviour.status}")
        params = dict(request.query)
        problem = self._params_problem(params, live=False)
        body = await request.read()
        self.uploads.append({"params": params, "content_type": request.content_type, "bytes": len(body)})
        if problem:
            self.violation(f"pre-recorded: {problem}")
            return error_reply(400, "Bad Request", problem)
        if not request.content_type.startswith("audio/"):
            self.violation(f"pre-recorded: Content-Type {request.content_type!r} is not audio/*")
            return error_reply(400, "Bad Request", "Content-Type must be an audio type")
        try:
            with wave.open(io.BytesIO(body)) as wav:
                rate, width = wav.getframerate(), wav.getsampwidth()
                samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        except (wave.Error, EOFError):
            self.violation("pre-recorded: the body is not a WAV file")
            return error_reply(400, "Bad Request", "corrupt or unsupported data")
        if width != 2:
            self.violation("pre-recorded: not 16-bit PCM")
        step = max(1, int(rate * WINDOW))
        speech = any(loud(samples[i : i + step]) for i in range(0, len(samples), step))
        text = self.next_transcript() if speech else ""
        duration = len(samples) / rate
        await asyncio.sleep(self.behaviour.final_delay)
        alternative = {"transcript": text, "confidence": 0.97 if text else 0.0, "words": words_of(text, 0.0, duration)}
        return web.json_response(
            {
                "metadata": {"request_id": str(uuid.uuid4()), "duration": duration, "channels": 1},
                "results": {"channels": [{"alternatives": [alternative]}]},
            }
        )
