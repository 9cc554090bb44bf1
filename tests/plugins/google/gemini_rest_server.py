"""A local Gemini REST server (``streamGenerateContent``) for the google plugin's tests.

Written from the public API reference (ai.google.dev/api/generate-content,
/api/caching#Content, the function-calling and thought-signature guides,
and the troubleshooting page's error table):

- ``POST /v1beta/models/{model}:streamGenerateContent?alt=sse``, the key in
  ``x-goog-api-key`` (or ``?key=``); none: ``403 PERMISSION_DENIED``; a wrong
  one: ``400 INVALID_ARGUMENT`` with detail reason ``API_KEY_INVALID``.
- The JSON body: ``contents`` (user/model turns alternating, user first,
  calls answered one for one by the next turn's ``functionResponse`` parts,
  ids the server issued), ``systemInstruction``, ``tools``, ``toolConfig``,
  ``generationConfig``. A bad one: ``400 INVALID_ARGUMENT`` (recorded in
  :attr:`RestServer.violations`, so the test fails).
- Replies are server-sent events whose data is a whole
  ``GenerateContentResponse``, lines ending ``\\r\\n``, no end marker; errors
  are ``{"error": {"code", "message", "status", "details"}}``.
- ``strict_signatures``: like Gemini 3, each model turn's first call must
  carry a thought signature, and a call the server signed must carry its own.

It runs on its own thread and loop, so it serves tests that each call
``asyncio.run`` as well as async tests.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from gemini_shapes import check_content, check_system_instruction, check_tools, check_turn_order, unknown

API_KEY = "AIza-test-0123456789abcdefghij"
MODEL = "gemini-2.5-flash"
CANNED = ["Hello", "! I am", " a test model", " on a local server."]
_TOP = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "cachedContent"}
_GENERATION = {"temperature", "topP", "topK", "maxOutputTokens", "candidateCount", "stopSequences", "thinkingConfig",
               "responseMimeType", "responseSchema", "presencePenalty", "frequencyPenalty", "seed"}  # fmt: skip


@dataclass
class StreamReply:
    """A streamed reply: response objects sent as events, then ``then``: ``end``,
    ``drop`` the connection, ``hold`` it open sending only comments, or go
    ``silent`` (send nothing, keep it open)."""

    chunks: list[dict[str, Any]]
    then: str = "end"


@dataclass
class ErrorReply:
    """An HTTP error in the API's shape."""

    status: int
    api_status: str
    message: str
    reasons: list[str] = field(default_factory=list)


@dataclass
class JsonReply:
    """A whole JSON body (``application/json``): an error in a shape of its own,
    or the reply of a gateway that ignored ``alt=sse`` (an array of responses)."""

    status: int
    body: Any


@dataclass
class Recorded:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    client_port: int  # the same twice: a reused connection


def text_chunks(parts: list[str], *, finish: str = "STOP", prompt_tokens: int = 11) -> list[dict[str, Any]]:
    """A text answer, one response object per part; the last has the finish reason and usage."""
    chunks: list[dict[str, Any]] = []
    for index, text in enumerate(parts):
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
        usage = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": index + 1,
            "totalTokenCount": prompt_tokens + index + 1,
        }
        if index == len(parts) - 1:
            candidate["finishReason"] = finish
        chunks.append({"candidates": [candidate], "usageMetadata": usage, "modelVersion": MODEL, "responseId": "r1"})
    return chunks


def call_chunk(
    calls: list[tuple[str, dict[str, Any]]], *, text: str = "", ids: bool = False, signature: str | None = None
) -> dict[str, Any]:
    """A final response object whose parts are function calls (after optional text)."""
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    for index, (name, args) in enumerate(calls):
        call: dict[str, Any] = {"name": name, "args": args}
        if ids:
            call["id"] = f"fc_{name}_{index}"
        part: dict[str, Any] = {"functionCall": call}
        if signature and index == 0:
            part["thoughtSignature"] = signature
        parts.append(part)
    candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
    return {"candidates": [candidate], "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 5}}


def sign(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class RestServer:
    """The server; ``with RestServer() as server``.

    Args:
        first_byte_delay: Seconds before the reply's headers (the model thinking).
        chunk_delay: Seconds between events.
    """

    def __init__(self, *, first_byte_delay: float = 0.0, chunk_delay: float = 0.0) -> None:
        self.first_byte_delay = first_byte_delay
        self.chunk_delay = chunk_delay
        self.strict_signatures = False
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.issued_ids: set[str] = set()
        self.signed: dict[str, str] = {}  # call name+args -> the signature the server gave it
        self.disconnects = 0
        self._script: collections.deque[StreamReply | ErrorReply | JsonReply] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def queue(self, *replies: StreamReply | ErrorReply | JsonReply) -> None:
        self._script.extend(replies)

    def reset(self) -> None:
        self._script.clear()
        self.requests.clear()
        self.violations.clear()
        self.issued_ids.clear()
        self.signed.clear()
        self.strict_signatures = False
        self.first_byte_delay = self.chunk_delay = 0.0
        self.disconnects = 0

    def __enter__(self) -> RestServer:
        self._thread = threading.Thread(target=self._serve, name="gemini-rest-server", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    # -- requests ----------------------------------------------------------------
    def _refuse(self, problem: str) -> web.Response:
        self.violations.append(problem)
        return _error(400, "INVALID_ARGUMENT", problem)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        self.requests.append(Recorded(request.path, dict(request.query), headers, body, peer[1] if peer else 0))
        key = headers.get("x-goog-api-key") or request.query.get("key")
        if key is None:
            return _error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity).",
            )
        if key != API_KEY:
            return _error(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", ["API_KEY_INVALID"]
            )
        if (
            request.method != "POST"
            or not request.path.startswith("/v1beta/models/")
            or not request.path.endswith(":streamGenerateContent")
        ):
            return self._refuse(
                f"expected POST /v1beta/models/{{model}}:streamGenerateContent, got {request.method} {request.path}"
            )
        if dict(request.query) != {"alt": "sse"}:
            return self._refuse(f"expected the query alt=sse, got {dict(request.query)}")
        if not headers.get("content-type", "").startswith("application/json"):
            return self._refuse("the body must be sent as application/json")
        if problem := self.check_body(body):
            return self._refuse(problem)
        reply = self._script.popleft() if self._script else StreamReply(text_chunks(CANNED))
        if self.first_byte_delay:
            await asyncio.sleep(self.first_byte_delay)
        if isinstance(reply, ErrorReply):
            return _error(reply.status, reply.api_status, reply.message, reply.reasons)
        if isinstance(reply, JsonReply):
            return web.json_response(reply.body, status=reply.status)
        return await self._stream(request, reply)

    def check_body(self, body: Any) -> str | None:
        if not isinstance(body, dict):
            return "Invalid JSON payload received."
        if problem := unknown(body, _TOP, "request"):
            return problem
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return "* GenerateContentRequest.contents: contents is not specified"
        for index, content in enumerate(contents):
            if problem := check_content(content, f"contents[{index}]"):
                return problem
        if contents[-1]["role"] != "user":
            return "the last content must be the user's (a question or the function responses)"
        if problem := check_turn_order(contents) or self._check_calls(contents):
            return problem
        if "systemInstruction" in body and (problem := check_system_instruction(body["systemInstruction"])):
            return problem
        if "tools" in body and (problem := check_tools(body["tools"])):
            return problem
        if "toolConfig" in body and (problem := _check_tool_config(body["toolConfig"], body.get("tools"))):
            return problem
        config = body.get("generationConfig", {})
        if not isinstance(config, dict) or (problem := unknown(config, _GENERATION, "generation_config")):
            return problem or "generationConfig must be an object"
        return None

    def _check_calls(self, contents: list[dict[str, Any]]) -> str | None:
        for index, content in enumerate(contents):
            calls = [p for p in content["parts"] if "functionCall" in p]
            for part in calls:
                call = part["functionCall"]
                if "id" in call and call["id"] not in self.issued_ids:
                    return f"contents[{index}]: functionCall id {call['id']!r} was never issued"
                mine = self.signed.get(_call_key(call))
                if mine is not None and part.get("thoughtSignature") != mine:
                    return f"contents[{index}]: function call {call['name']} lost its thought signature"
            if self.strict_signatures and calls and "thoughtSignature" not in calls[0]:
                return f"Function call is missing a thought_signature in functionCall parts (contents[{index}])."
        return None

    async def _stream(self, request: web.Request, reply: StreamReply) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            for index, chunk in enumerate(reply.chunks):
                self._note_calls(chunk)
                if index and self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                await response.write(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
            if reply.then == "drop":
                assert request.transport is not None
                request.transport.abort()
                return response
            if reply.then == "hold":
                while True:
                    await asyncio.sleep(0.05)
                    await response.write(b": still here\r\n\r\n")
            if reply.then == "silent":
                # Nothing more at all, until the client goes away.
                while request.transport is not None and not request.transport.is_closing():
                    await asyncio.sleep(0.02)
                self.disconnects += 1
                return response
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnects += 1
            raise
        await response.write_eof()
        return response

    def _note_calls(self, chunk: dict[str, Any]) -> None:
        for candidate in chunk.get("candidates", []):
            for part in candidate.get("content", {}).get("parts", []):
                call = part.get("functionCall")
                if call is None:
                    continue
                if "id" in call:
                    self.issued_ids.add(call["id"])
                if "thoughtSignature" in part:
                    self.signed[_call_key(call)] = part["thoughtSignature"]


def _call_key(call: dict[str, Any]) -> str:
    return json.dumps([call.get("name"), call.get("args", {})], sort_keys=True)


def _check_tool_config(config: Any, tools: Any) -> str | None:
    calling = config.get("functionCallingConfig") if isinstance(config, dict) else None
    if not isinstance(calling, dict) or (
        problem := unknown(calling, {"mode", "allowedFunctionNames"}, "function_calling_config")
    ):
        return problem or "toolConfig needs functionCallingConfig"
    if calling.get("mode") not in ("AUTO", "ANY", "NONE", "VALIDATED"):
        return f"function_calling_config.mode: invalid value {calling.get('mode')!r}"
    names = calling.get("allowedFunctionNames")
    if names is not None:
        declared = {d["name"] for t in tools or [] for d in t.get("functionDeclarations", [])}
        if calling["mode"] != "ANY" or not set(names) <= declared:
            return "allowedFunctionNames is only for mode ANY, with declared functions"
    return None


def _error(status: int, api_status: str, message: str, reasons: list[str] | None = None) -> web.Response:
    error: dict[str, Any] = {"code": status, "message": message, "status": api_status}
    if reasons:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": r, "domain": "googleapis.com"}
            for r in reasons
        ]
    return web.json_response({"error": error}, status=status)
