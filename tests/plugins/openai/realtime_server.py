"""A local Realtime API server (GA protocol) for the ``openai`` realtime provider's tests.

It holds a scripted conversation over a real WebSocket on 127.0.0.1: checks
the bearer key and ``model`` query, records every client event, validates
their shapes (problems go to :attr:`RealtimeServer.problems` *and* back to the
client as ``error`` events, as the real service does), detects speech in the
appended audio by energy, transcribes with the script and answers each
response with the next :class:`ServerTurn`: a tone with transcript deltas,
or function calls. ``response.cancel`` and ``conversation.item.truncate``
are honoured and checked against what was sent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from vocalis.testing import tone

API_KEY = "sk-realtime-test-0123456789"
MODEL = "gpt-realtime"
RATE = 24_000
BYTES_PER_MS = RATE * 2 // 1000


@dataclass
class ServerTurn:
    """What the server says in one response.

    Attributes:
        heard: Transcript it reports for the user audio committed before it.
        reply: Text of its spoken answer (audio plus transcript deltas).
        tool_calls: ``(name, arguments_json)`` calls made before any reply.
        error: Reject the ``response.create`` with this error message.
        hold_after: Stop after this many audio chunks until cancelled.
        drop_after: Abort the TCP connection after this many audio chunks.
    """

    heard: str = ""
    reply: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    hold_after: int | None = None
    drop_after: int | None = None


@dataclass
class _Item:
    id: str
    type: str
    role: str = ""
    call_id: str = ""
    audio_ms: int = 0


class _Connection:
    """Protocol state of one client connection."""

    def __init__(self, server: RealtimeServer, ws: ServerConnection) -> None:
        self.server = server
        self.ws = ws
        self.session: dict[str, Any] = {"type": "realtime", "instructions": "", "audio": {"input": {}, "output": {}}}
        self.items: dict[str, _Item] = {}
        self.calls_issued: set[str] = set()
        self.calls_answered: set[str] = set()
        self.buffer_ms = 0
        self.audio_ms = 0
        self.speaking = False
        self.silence_ms = 0
        self.response: asyncio.Task[None] | None = None
        self.response_id: str | None = None

    # -- helpers -------------------------------------------------------------
    async def emit(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", self.server.new_id("event"))
        self.server.sent.append(event)
        await self.ws.send(json.dumps(event))

    async def reject(
        self,
        message: str,
        *,
        cause: dict[str, Any] | None = None,
        code: str | None = None,
        param: str | None = None,
        problem: bool = True,
    ) -> None:
        if problem:
            self.server.problems.append(f"{(cause or {}).get('type', '?')}: {message}")
        error = {
            "type": "invalid_request_error",
            "code": code,
            "message": message,
            "param": param,
            "event_id": (cause or {}).get("event_id"),
        }
        await self.emit({"type": "error", "error": error})

    def turn_detection(self) -> dict[str, Any] | None:
        return self.session["audio"]["input"].get("turn_detection", {"type": "server_vad"})

    # -- client events -------------------------------------------------------------
    async def handle(self, raw: str | bytes) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            await self.reject("the message is not JSON")
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            await self.reject("an event must be an object with a string 'type'")
            return
        if "event_id" in event and not isinstance(event["event_id"], str):
            await self.reject("event_id must be a string", cause=event)
        self.server.received.append(event)
        handler = getattr(self, "on_" + event["type"].replace(".", "_"), None)
        if handler is None:
            await self.reject(f"Invalid value: '{event['type']}'", cause=event, code="invalid_value", param="type")
            return
        await handler(event)

    async def on_session_update(self, event: dict[str, Any]) -> None:
        problem = check_session(event.get("session"))
        if problem:
            await self.reject(problem, cause=event, param="session")
            return
        update = event["session"]
        for key, value in update.items():
            if key == "audio":
                for side in ("input", "output"):
                    self.session["audio"][side].update(value.get(side, {}))
            else:
                self.session[key] = value
        await self.emit({"type": "session.updated", "session": self.session})

    async def on_input_audio_buffer_append(self, event: dict[str, Any]) -> None:
        try:
            pcm = base64.b64decode(event.get("audio", ""), validate=True)
        except (binascii.Error, TypeError, ValueError):
            await self.reject("audio is not base64", cause=event, param="audio")
            return
        if not pcm or len(pcm) % 2:
            await self.reject(f"audio must be whole PCM16 samples, got {len(pcm)} bytes", cause=event, param="audio")
            return
        ms = len(pcm) // BYTES_PER_MS
        self.buffer_ms += ms
        self.audio_ms += ms
        detection = self.turn_detection()
        if detection is not None:
            await self.detect(np.frombuffer(pcm, dtype="<i2"), ms, detection)

    async def detect(self, samples: np.ndarray, ms: int, detection: dict[str, Any]) -> None:
        loud = int(np.abs(samples.astype(np.int32)).max()) > self.server.vad_threshold
        if loud and not self.speaking:
            self.speaking, self.silence_ms = True, 0
            await self.emit(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": self.audio_ms - ms,
                    "item_id": self.server.peek_id("item"),
                }
            )
            if detection.get("interrupt_response", True) and self.response is not None:
                await self.cancel_response("turn_detected")
        elif self.speaking:
            self.silence_ms = 0 if loud else self.silence_ms + ms
            if self.silence_ms >= detection.get("silence_duration_ms", 500):
                self.speaking = False
                await self.emit(
                    {
                        "type": "input_audio_buffer.speech_stopped",
                        "audio_end_ms": self.audio_ms,
                        "item_id": self.server.peek_id("item"),
                    }
                )
                await self.commit()
                # An answer still running is not replaced (interrupt_response off).
                if detection.get("create_response", True) and self.response is None:
                    await self.start_response(None)

    async def on_input_audio_buffer_commit(self, event: dict[str, Any]) -> None:
        if self.buffer_ms < 100:
            await self.reject(
                f"buffer too small: {self.buffer_ms} ms of audio", cause=event, code="input_audio_buffer_commit_empty"
            )
            return
        await self.commit()

    async def commit(self) -> None:
        item = _Item(self.server.new_id("item"), "message", role="user")
        self.items[item.id] = item
        self.buffer_ms = 0
        await self.emit({"type": "input_audio_buffer.committed", "item_id": item.id, "previous_item_id": None})
        body = {
            "id": item.id,
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self.emit({"type": "conversation.item.added", "item": body})
        await self.emit({"type": "conversation.item.done", "item": body})
        if self.session["audio"]["input"].get("transcription"):
            heard = self.server.turns[0].heard if self.server.turns else ""
            for word in heard.split(" ") if heard else []:
                await self.emit(
                    {
                        "type": "conversation.item.input_audio_transcription.delta",
                        "item_id": item.id,
                        "content_index": 0,
                        "delta": word + " ",
                    }
                )
            await self.emit(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item.id,
                    "content_index": 0,
                    "transcript": heard,
                }
            )

    async def on_conversation_item_create(self, event: dict[str, Any]) -> None:
        item = event.get("item")
        problem = check_item(item, self.calls_issued, self.calls_answered)
        if problem:
            await self.reject(problem, cause=event, param="item")
            return
        assert isinstance(item, dict)
        if item["type"] == "function_call":
            self.calls_issued.add(item["call_id"])
        if item["type"] == "function_call_output":
            self.calls_answered.add(item["call_id"])
        stored = _Item(
            item.get("id") or self.server.new_id("item"),
            item["type"],
            role=item.get("role", ""),
            call_id=item.get("call_id", ""),
        )
        self.items[stored.id] = stored
        body = {**item, "id": stored.id, "object": "realtime.item", "status": "completed"}
        await self.emit({"type": "conversation.item.added", "previous_item_id": None, "item": body})
        await self.emit({"type": "conversation.item.done", "previous_item_id": None, "item": body})

    async def on_response_create(self, event: dict[str, Any]) -> None:
        problem = check_response_params(event.get("response"))
        if problem:
            await self.reject(problem, cause=event, param="response")
            return
        if self.response is not None:
            await self.reject(
                "Conversation already has an active response in progress",
                cause=event,
                code="conversation_already_has_active_response",
            )
            return
        await self.start_response(event)

    async def on_response_cancel(self, event: dict[str, Any]) -> None:
        wanted = event.get("response_id")
        if self.response is None or (wanted is not None and wanted != self.response_id):
            await self.reject(
                "Cancellation failed: no active response found", cause=event, code="response_cancel_not_active"
            )
            return
        await self.cancel_response("client_cancelled")

    async def on_conversation_item_truncate(self, event: dict[str, Any]) -> None:
        item = self.items.get(event.get("item_id", ""))
        end = event.get("audio_end_ms")
        if item is None or item.role != "assistant":
            await self.reject("item_id must name an assistant message", cause=event, param="item_id")
        elif event.get("content_index") != 0:
            await self.reject("content_index must be 0", cause=event, param="content_index")
        elif not isinstance(end, int) or isinstance(end, bool) or not 0 <= end <= item.audio_ms:
            await self.reject(f"audio_end_ms {end!r} is outside 0..{item.audio_ms}", cause=event, param="audio_end_ms")
        else:
            await self.emit(
                {"type": "conversation.item.truncated", "item_id": item.id, "content_index": 0, "audio_end_ms": end}
            )

    # -- responses -----------------------------------------------------------------
    async def start_response(self, request: dict[str, Any] | None) -> None:
        if not self.server.turns:
            self.server.problems.append("a response was requested but the script is empty")
        turn = self.server.turns.pop(0) if self.server.turns else ServerTurn()
        if turn.error is not None:
            await self.reject(turn.error, cause=request, code="scripted_error", problem=False)
            return
        self.response_id = self.server.new_id("resp")
        self.response = asyncio.get_running_loop().create_task(self.respond(self.response_id, turn))

    async def cancel_response(self, reason: str) -> None:
        task, response_id = self.response, self.response_id
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task])
        self.response = self.response_id = None
        await self.emit(
            {
                "type": "response.done",
                "response": {
                    "id": response_id,
                    "object": "realtime.response",
                    "status": "cancelled",
                    "status_details": {"type": "cancelled", "reason": reason},
                    "output": [],
                },
            }
        )

    async def respond(self, response_id: str, turn: ServerTurn) -> None:
        base = {"response_id": response_id}
        await self.emit(
            {
                "type": "response.created",
                "response": {
                    "id": response_id,
                    "object": "realtime.response",
                    "status": "in_progress",
                    "output": [],
                    "output_modalities": ["audio"],
                },
            }
        )
        output: list[dict[str, Any]] = []
        for index, (name, arguments) in enumerate(turn.tool_calls):
            call = {
                "id": self.server.new_id("item"),
                "type": "function_call",
                "object": "realtime.item",
                "call_id": self.server.new_id("call"),
                "name": name,
                "arguments": arguments,
            }
            self.calls_issued.add(call["call_id"])
            self.items[call["id"]] = _Item(call["id"], "function_call", call_id=call["call_id"])
            where = {**base, "output_index": index, "item_id": call["id"]}
            await self.emit(
                {
                    "type": "response.output_item.added",
                    **base,
                    "output_index": index,
                    "item": {**call, "status": "in_progress", "arguments": ""},
                }
            )
            await self.emit(
                {
                    "type": "response.function_call_arguments.delta",
                    **where,
                    "call_id": call["call_id"],
                    "delta": arguments,
                }
            )
            await self.emit(
                {
                    "type": "response.function_call_arguments.done",
                    **where,
                    "call_id": call["call_id"],
                    "name": name,
                    "arguments": arguments,
                }
            )
            await self.emit(
                {
                    "type": "response.output_item.done",
                    **base,
                    "output_index": index,
                    "item": {**call, "status": "completed"},
                }
            )
            output.append({**call, "status": "completed"})
        if turn.reply:
            output.append(await self.speak(base, len(output), turn))
        self.response = self.response_id = None
        await self.emit(
            {
                "type": "response.done",
                "response": {"id": response_id, "object": "realtime.response", "status": "completed", "output": output},
            }
        )

    async def speak(self, base: dict[str, Any], index: int, turn: ServerTurn) -> dict[str, Any]:
        server = self.server
        item = _Item(server.new_id("item"), "message", role="assistant")
        self.items[item.id] = item
        where = {**base, "item_id": item.id, "output_index": index, "content_index": 0}
        body = {"id": item.id, "type": "message", "role": "assistant", "object": "realtime.item"}
        await self.emit(
            {
                "type": "response.output_item.added",
                **base,
                "output_index": index,
                "item": {**body, "status": "in_progress", "content": []},
            }
        )
        await self.emit({"type": "response.content_part.added", **where, "part": {"type": "audio", "transcript": ""}})
        pcm = tone(len(turn.reply) * server.seconds_per_char, RATE, frequency=330.0).data
        step = server.chunk_ms * BYTES_PER_MS
        chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)]
        words = turn.reply.split(" ")
        audio_kind, text_kind = server.event_names
        for n, chunk in enumerate(chunks, 1):
            item.audio_ms += len(chunk) // BYTES_PER_MS
            await self.emit({"type": audio_kind, **where, "delta": base64.b64encode(chunk).decode()})
            # Spread the words over the chunks, each sent before its audio ends.
            said = words[len(words) * (n - 1) // len(chunks) : len(words) * n // len(chunks)]
            if said:
                text = " ".join(said) + ("" if n == len(chunks) else " ")
                await self.emit({"type": text_kind, **where, "delta": text})
            if turn.drop_after == n:
                self.ws.transport.abort()
                await asyncio.Future()  # the connection handler cancels this task
            if turn.hold_after == n:
                await asyncio.Future()  # until response.cancel
            await asyncio.sleep(server.pace * server.chunk_ms / 1000)
        await self.emit({"type": "response.output_audio.done", **where})
        await self.emit({"type": "response.output_audio_transcript.done", **where, "transcript": turn.reply})
        part = {"type": "output_audio", "transcript": turn.reply}
        await self.emit({"type": "response.content_part.done", **where, "part": part})
        done = {**body, "status": "completed", "content": [part]}
        await self.emit({"type": "response.output_item.done", **base, "output_index": index, "item": done})
        return done


class RealtimeServer:
    """The server; use as ``async with RealtimeServer(turns) as server``.

    Args:
        turns: Scripted answers, consumed one per response.
        api_key: The key a client must send as ``Authorization: Bearer``.
        models: Models the ``model`` query may name.
        seconds_per_char: Reply audio length per character.
        chunk_ms: Length of each audio delta.
        pace: Seconds slept per second of audio sent (0: as fast as possible).
        legacy_names: Send the beta ``response.audio.delta`` names.

    Attributes:
        handshake_status: Refuse every upgrade with this HTTP status (and an
            ``{"error": ...}`` body saying ``scripted handshake <status>``).
    """

    def __init__(
        self,
        turns: list[ServerTurn] | None = None,
        *,
        api_key: str = API_KEY,
        models: tuple[str, ...] = (MODEL,),
        seconds_per_char: float = 0.04,
        chunk_ms: int = 40,
        pace: float = 0.0,
        vad_threshold: int = 500,
        legacy_names: bool = False,
    ) -> None:
        self.turns = list(turns or [])
        self.api_key = api_key
        self.models = models
        self.seconds_per_char = seconds_per_char
        self.chunk_ms = chunk_ms
        self.pace = pace
        self.vad_threshold = vad_threshold
        self.event_names = (
            ("response.audio.delta", "response.audio_transcript.delta")
            if legacy_names
            else ("response.output_audio.delta", "response.output_audio_transcript.delta")
        )
        self.received: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self.handshakes: list[tuple[str, dict[str, str]]] = []
        self.problems: list[str] = []
        self.handshake_status: int | None = None
        self.connections: list[_Connection] = []
        self._next: dict[str, int] = {}
        self._server: Server | None = None

    def new_id(self, prefix: str) -> str:
        value = self._next.get(prefix, 1)
        self._next[prefix] = value + 1
        return f"{prefix}_{value:03d}"

    def peek_id(self, prefix: str) -> str:
        return f"{prefix}_{self._next.get(prefix, 1):03d}"

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        """The HTTP API root a client is configured with."""
        return f"http://127.0.0.1:{self.port}/v1"

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """Recorded client events of one type, in order."""
        return [event for event in self.received if event["type"] == kind]

    def types(self, *, skip_audio: bool = True) -> list[str]:
        """Types of the recorded client events (appends left out by default)."""
        return [e["type"] for e in self.received if not (skip_audio and e["type"] == "input_audio_buffer.append")]

    async def __aenter__(self) -> RealtimeServer:
        self._server = await serve(self._handler, "127.0.0.1", 0, process_request=self._check_request)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _check_request(self, ws: ServerConnection, request: Any) -> Any:
        self.handshakes.append((request.path, {k.lower(): v for k, v in request.headers.raw_items()}))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            body = {
                "error": {
                    "message": "Incorrect API key provided.",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            }
            return ws.respond(HTTPStatus.UNAUTHORIZED, json.dumps(body))
        if self.handshake_status is not None:
            status = HTTPStatus(self.handshake_status)
            body = {"error": {"message": f"scripted handshake {status.value}", "type": "server_error", "code": None}}
            return ws.respond(status, json.dumps(body))
        split = urlsplit(request.path)
        if not re.fullmatch(r"/v1/realtime", split.path) or not parse_qs(split.query).get("model"):
            self.problems.append(f"bad handshake path {request.path!r}")
            return ws.respond(HTTPStatus.BAD_REQUEST, "expected /v1/realtime?model=...")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        connection = _Connection(self, ws)
        self.connections.append(connection)
        model = parse_qs(urlsplit(ws.request.path).query)["model"][0] if ws.request else ""
        try:
            if model not in self.models:
                error = {
                    "type": "invalid_request_error",
                    "code": "model_not_found",
                    "message": f"The model '{model}' does not exist.",
                    "param": None,
                    "event_id": None,
                }
                await connection.emit({"type": "error", "error": error})
                await ws.close(1008, "model_not_found")
                return
            await connection.emit(
                {
                    "type": "session.created",
                    "session": {
                        **connection.session,
                        "id": self.new_id("sess"),
                        "object": "realtime.session",
                        "model": model,
                    },
                }
            )
            async for raw in ws:
                await connection.handle(raw)
        except ConnectionClosed:
            pass
        finally:
            if connection.response is not None:
                connection.response.cancel()
                with contextlib.suppress(BaseException):
                    await connection.response


# -- request shapes ------------------------------------------------------------------
_SESSION_KEYS = {
    "type",
    "instructions",
    "output_modalities",
    "audio",
    "tools",
    "tool_choice",
    "max_output_tokens",
    "model",
    "include",
    "tracing",
    "truncation",
    "prompt",
    "parallel_tool_calls",
    "reasoning",
}
_VAD_KEYS = {
    "server_vad": {
        "type",
        "threshold",
        "prefix_padding_ms",
        "silence_duration_ms",
        "create_response",
        "interrupt_response",
        "idle_timeout_ms",
    },
    "semantic_vad": {"type", "eagerness", "create_response", "interrupt_response"},
}
_RESPONSE_KEYS = {
    "instructions",
    "output_modalities",
    "tools",
    "tool_choice",
    "conversation",
    "metadata",
    "max_output_tokens",
    "input",
    "audio",
    "prompt",
}
_PARTS = {
    "user": {"input_text", "input_audio", "input_image"},
    "system": {"input_text"},
    "assistant": {"output_text", "output_audio"},
}
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _extra(value: dict[str, Any], allowed: set[str], where: str) -> str | None:
    unknown = sorted(set(value) - allowed)
    return f"Unknown parameter: '{where}.{unknown[0]}'" if unknown else None


def _check_format(value: Any, where: str) -> str | None:
    if value != {"type": "audio/pcm", "rate": RATE}:
        return f"{where}.format must be {{'type': 'audio/pcm', 'rate': {RATE}}} here, got {value!r}"
    return None


def _check_input(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "session.audio.input must be an object"
    allowed = {"format", "turn_detection", "transcription", "noise_reduction"}
    if problem := _extra(value, allowed, "session.audio.input"):
        return problem
    if "format" in value and (problem := _check_format(value["format"], "session.audio.input")):
        return problem
    detection = value.get("turn_detection")
    if detection is not None:
        if not isinstance(detection, dict) or detection.get("type") not in _VAD_KEYS:
            return f"bad turn_detection {detection!r}"
        if problem := _extra(detection, _VAD_KEYS[detection["type"]], "session.audio.input.turn_detection"):
            return problem
        for flag in ("create_response", "interrupt_response"):
            if flag in detection and not isinstance(detection[flag], bool):
                return f"turn_detection.{flag} must be a boolean"
    transcription = value.get("transcription")
    if transcription is not None and (
        not isinstance(transcription, dict)
        or not isinstance(transcription.get("model"), str)
        or _extra(transcription, {"model", "language", "prompt"}, "transcription")
    ):
        return f"bad transcription {transcription!r}"
    noise = value.get("noise_reduction")
    if noise is not None and noise != {"type": "near_field"} and noise != {"type": "far_field"}:
        return f"bad noise_reduction {noise!r}"
    return None


def _check_output(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "session.audio.output must be an object"
    if problem := _extra(value, {"format", "voice", "speed"}, "session.audio.output"):
        return problem
    if "format" in value and (problem := _check_format(value["format"], "session.audio.output")):
        return problem
    if "voice" in value and not isinstance(value["voice"], str):
        return "voice must be a string"
    if "speed" in value and not 0.25 <= value["speed"] <= 1.5:
        return "speed must be within 0.25..1.5"
    return None


def _check_tools(tools: Any) -> str | None:
    if not isinstance(tools, list):
        return "tools must be a list"
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            return f"tools entries must have type 'function', got {tool!r}"
        if problem := _extra(tool, {"type", "name", "description", "parameters"}, "session.tools[]"):
            return problem
        if not isinstance(tool.get("name"), str) or not _TOOL_NAME.fullmatch(tool["name"]):
            return f"bad tool name {tool.get('name')!r}"
        if not isinstance(tool.get("description", ""), str):
            return "tool description must be a string"
        parameters = tool.get("parameters")
        if not isinstance(parameters, dict) or parameters.get("type") != "object":
            return f"tool parameters must be a JSON schema object, got {parameters!r}"
    return None


def check_session(session: Any) -> str | None:
    """Why a ``session.update``'s ``session`` is invalid, or None."""
    if not isinstance(session, dict):
        return "session must be an object"
    if session.get("type") != "realtime":
        return "Missing required parameter: 'session.type' (must be 'realtime')"
    if problem := _extra(session, _SESSION_KEYS, "session"):
        return problem
    if "instructions" in session and not isinstance(session["instructions"], str):
        return "instructions must be a string"
    if "output_modalities" in session and session["output_modalities"] not in (["audio"], ["text"]):
        return f"bad output_modalities {session['output_modalities']!r}"
    audio = session.get("audio", {})
    if not isinstance(audio, dict) or (problem := _extra(audio, {"input", "output"}, "session.audio")):
        return "session.audio must be an object with input and output"
    if "input" in audio and (problem := _check_input(audio["input"])):
        return problem
    if "output" in audio and (problem := _check_output(audio["output"])):
        return problem
    if "tools" in session and (problem := _check_tools(session["tools"])):
        return problem
    choice = session.get("tool_choice", "auto")
    forced = isinstance(choice, dict) and choice.get("type") == "function"
    if choice not in ("auto", "none", "required") and not forced:
        return f"bad tool_choice {choice!r}"
    tokens = session.get("max_output_tokens", "inf")
    if tokens != "inf" and not (isinstance(tokens, int) and 1 <= tokens <= 4096):
        return f"bad max_output_tokens {tokens!r}"
    return None


def check_item(item: Any, issued: set[str], answered: set[str]) -> str | None:
    """Why a ``conversation.item.create``'s item is invalid, or None."""
    if not isinstance(item, dict):
        return "item must be an object"
    kind = item.get("type")
    if kind == "message":
        if problem := _extra(item, {"type", "role", "content", "id", "object", "status"}, "item"):
            return problem
        role, content = item.get("role"), item.get("content")
        if role not in _PARTS or not isinstance(content, list) or not content:
            return f"a message needs a role in {sorted(_PARTS)} and content parts"
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in _PARTS[role]:
                return f"a {role} message cannot have part {part!r}"
            if part["type"].endswith("_text") and not (isinstance(part.get("text"), str) and part["text"]):
                return "a text part needs non-empty text"
        return None
    if kind == "function_call":
        if not all(isinstance(item.get(k), str) for k in ("call_id", "name", "arguments")):
            return "a function_call needs string call_id, name and arguments"
        return _extra(item, {"type", "call_id", "name", "arguments", "id", "object", "status"}, "item")
    if kind == "function_call_output":
        call_id = item.get("call_id")
        if call_id not in issued:
            return f"function_call_output for unknown call_id {call_id!r}"
        if call_id in answered:
            return f"function_call_output for call_id {call_id!r} was already given"
        if not isinstance(item.get("output"), str):
            return "output must be a string"
        return _extra(item, {"type", "call_id", "output", "id", "object", "status"}, "item")
    return f"unsupported item type {kind!r}"


def check_response_params(response: Any) -> str | None:
    """Why a ``response.create``'s ``response`` is invalid, or None."""
    if response is None:
        return None
    if not isinstance(response, dict):
        return "response must be an object"
    if problem := _extra(response, _RESPONSE_KEYS, "response"):
        return problem
    if "instructions" in response and not isinstance(response["instructions"], str):
        return "response.instructions must be a string"
    return None
