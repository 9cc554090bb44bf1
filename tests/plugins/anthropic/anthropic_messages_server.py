"""A local Messages API server for the anthropic plugin's tests.

Written from the public API reference: ``POST /v1/messages`` with the key in
``x-api-key`` (or ``Authorization: Bearer``) and an ``anthropic-version``
header; ``"stream": true`` replies are server-sent events, each ``event:``
name matching the ``type`` in its JSON data::

    message_start -> (content_block_start, content_block_delta*, content_block_stop)*
                  -> message_delta -> message_stop       (ping anywhere, error instead)

Text comes as ``text_delta``s, tool input as ``input_json_delta`` fragments
of JSON text. HTTP errors carry ``{"type": "error", "error": {"type",
"message"}}``.

The server runs on its own thread and event loop, so it serves tests that
each call ``asyncio.run`` as well as async tests. It records every request,
checks each against the reference (a bad one gets the API's 400 and lands in
``violations``), and plays scripted replies in order; with none queued it
streams a canned text answer.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_KEY = "sk-ant-test-0123456789"
CANNED_TEXT = ["Hello", "! I am", " a test model", " on a local server."]

Event = tuple[str, dict[str, Any] | str]  # data as JSON, or raw text (to send garbage)

_TOP_LEVEL = {
    "model",
    "max_tokens",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "metadata",
    "thinking",
    "service_tier",
}
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")


@dataclass
class StreamReply:
    """A streamed reply.

    Attributes:
        events: ``(event name, data)`` pairs, sent in order.
        then: ``"end"`` (finish the body), ``"drop"`` (cut the connection
            without finishing the body), ``"hold"`` (send pings until the
            client goes away) or ``"stall"`` (send nothing more, keep the
            connection open).
    """

    events: list[Event]
    then: str = "end"


@dataclass
class ErrorReply:
    """An HTTP error response in the API's error shape."""

    status: int
    error_type: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SilentReply:
    """No answer at all, not even the status line, until the client goes away."""


@dataclass
class RecordedRequest:
    """What a client sent: lower-cased headers, the parsed JSON body, and the
    client's port (the same port twice means a reused connection)."""

    path: str
    headers: dict[str, str]
    body: Any
    client_port: int


def message_events(
    blocks: list[tuple[Any, ...]],
    *,
    input_tokens: int = 12,
    output_tokens: int = 7,
    stop_reason: str = "end_turn",
    model: str = "claude-haiku-4-5",
) -> list[Event]:
    """A complete event stream for a reply of ``blocks``.

    Args:
        blocks: ``("text", [parts])`` or ``("tool_use", id, name, [json parts])``.
    """
    events: list[Event] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_local_1",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": model,
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                },
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(blocks):
        if block[0] == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": part} for part in block[1]]
        else:
            _, call_id, name, parts = block
            start = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": part} for part in parts]
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        for delta in deltas:
            events.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def text_reply(parts: list[str], **kwargs: Any) -> StreamReply:
    """A streamed text answer."""
    return StreamReply(message_events([("text", parts)], **kwargs))


def error_event(error_type: str, message: str) -> Event:
    """An ``error`` event, as sent when a stream fails after it started."""
    return ("error", {"type": "error", "error": {"type": error_type, "message": message}})


class MessagesServer:
    """The server; use :meth:`start` and :meth:`stop` (or ``with``)."""

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self.disconnects = 0
        self.disconnected = threading.Event()
        self._script: collections.deque[StreamReply | ErrorReply | SilentReply] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The base URL to give the client."""
        return f"http://127.0.0.1:{self.port}"

    def queue(self, *replies: StreamReply | ErrorReply | SilentReply) -> None:
        """Play these replies to the next requests, in order."""
        self._script.extend(replies)

    def reset(self) -> None:
        """Forget requests, violations, disconnects and unplayed replies."""
        self.requests.clear()
        self.violations.clear()
        self._script.clear()
        self.disconnects = 0
        self.disconnected.clear()

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> MessagesServer:
        self._thread = threading.Thread(target=self._run, name="anthropic-test-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> MessagesServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
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

    # -- handling --------------------------------------------------------------
    async def _messages(self, request: web.Request) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            body = await request.json()
        except ValueError:
            body = None
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(RecordedRequest(request.path, headers, body, peer[1] if peer else 0))
        if not self._authorized(headers):
            return _error(401, "authentication_error", "invalid x-api-key")
        problems = validate(headers, body)
        if problems:
            self.violations.extend(problems)
            return _error(400, "invalid_request_error", "; ".join(problems))
        reply = self._script.popleft() if self._script else text_reply(CANNED_TEXT)
        if isinstance(reply, ErrorReply):
            return _error(reply.status, reply.error_type, reply.message, reply.headers)
        if isinstance(reply, SilentReply):
            try:
                await asyncio.sleep(30)  # the handler is cancelled when the client leaves
            except asyncio.CancelledError:
                self.disconnects += 1
                self.disconnected.set()
                raise
            return _error(504, "timeout_error", "the test server gave up waiting")
        return await self._stream(request, reply)

    def _authorized(self, headers: dict[str, str]) -> bool:
        bearer = headers.get("authorization", "")
        return headers.get("x-api-key") == self.api_key or bearer == f"Bearer {self.api_key}"

    async def _stream(self, request: web.Request, reply: StreamReply) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "content-type": "text/event-stream",
                "cache-control": "no-cache",
                "request-id": "req_local_1",
            }
        )
        await response.prepare(request)
        try:
            for name, data in reply.events:
                text = data if isinstance(data, str) else json.dumps(data)
                await response.write(f"event: {name}\ndata: {text}\n\n".encode())
            if reply.then == "drop":
                assert request.transport is not None
                request.transport.abort()  # no final chunk: the body is cut short
                return response
            if reply.then == "hold":
                # Like a long generation: keep the stream alive until the
                # client leaves (a write to a closed socket then fails).
                for _ in range(500):
                    await asyncio.sleep(0.02)
                    await response.write(b'event: ping\ndata: {"type": "ping"}\n\n')
            if reply.then == "stall":
                await asyncio.sleep(30)  # the handler is cancelled when the client leaves
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            self.disconnects += 1
            self.disconnected.set()
            raise
        return response


def _error(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": "req_local_err",
    }
    return web.json_response(body, status=status, headers={"request-id": "req_local_err", **(headers or {})})


def validate(headers: dict[str, str], body: Any) -> list[str]:
    """What is wrong with a Messages request, per the API reference."""
    problems: list[str] = []
    if not headers.get("anthropic-version"):
        problems.append("anthropic-version header: missing")
    if not headers.get("content-type", "").startswith("application/json"):
        problems.append("content-type: must be application/json")
    if not isinstance(body, dict):
        return [*problems, "body: not a JSON object"]
    problems += [f"{key}: Extra inputs are not permitted" for key in body if key not in _TOP_LEVEL]
    if not isinstance(body.get("model"), str) or not body["model"]:
        problems.append("model: a non-empty string is required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        problems.append("max_tokens: a positive integer is required")
    if body.get("stream") is not True:
        problems.append("stream: this server only streams (expected true)")
    temperature = body.get("temperature")
    if temperature is not None and not (isinstance(temperature, int | float) and 0 <= temperature <= 1):
        problems.append("temperature: must be between 0 and 1")
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        problems.append("system: must be a string or a list of text blocks")
    problems += _check_messages(body.get("messages"))
    problems += _check_tools(body.get("tools"), body.get("tool_choice"))
    return problems


def _check_messages(messages: Any) -> list[str]:
    if not isinstance(messages, list) or not messages:
        return ["messages: a non-empty list is required"]
    problems: list[str] = []
    if not isinstance(messages[0], dict) or messages[0].get("role") != "user":
        problems.append("messages.0: the first message must use the user role")
    previous_tool_ids: set[str] = set()
    for i, msg in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(msg, dict) or msg.get("role") not in ("user", "assistant"):
            problems.append(f"{where}.role: must be user or assistant")
            continue
        content = msg.get("content")
        if isinstance(content, str):
            previous_tool_ids = set()
            continue
        if not isinstance(content, list) or not content:
            problems.append(f"{where}.content: a string or a non-empty list of blocks is required")
            continue
        tool_ids: set[str] = set()
        seen_other = False
        for j, block in enumerate(content):
            kind = block.get("type") if isinstance(block, dict) else None
            at = f"{where}.content.{j}"
            if kind == "text":
                if not isinstance(block.get("text"), str) or not block["text"].strip():
                    problems.append(f"{at}: text content blocks must be non-empty")
                seen_other = True
            elif kind == "tool_use" and msg["role"] == "assistant":
                if not (isinstance(block.get("id"), str) and isinstance(block.get("name"), str)):
                    problems.append(f"{at}: tool_use needs string id and name")
                if not isinstance(block.get("input"), dict):
                    problems.append(f"{at}.input: must be an object")
                tool_ids.add(str(block.get("id")))
            elif kind == "tool_result" and msg["role"] == "user":
                if seen_other:
                    problems.append(f"{at}: tool_result blocks must come first in the user message")
                if block.get("tool_use_id") not in previous_tool_ids:
                    problems.append(f"{at}: unexpected tool_use_id {block.get('tool_use_id')!r}")
                if not isinstance(block.get("content", ""), str | list):
                    problems.append(f"{at}.content: must be a string or blocks")
                if not isinstance(block.get("is_error", False), bool):
                    problems.append(f"{at}.is_error: must be a boolean")
            else:
                problems.append(f"{at}: block type {kind!r} not allowed in a {msg['role']} message")
        previous_tool_ids = tool_ids
    return problems


def _check_tools(tools: Any, tool_choice: Any) -> list[str]:
    problems: list[str] = []
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            return ["tools: must be a list"]
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not _TOOL_NAME.match(str(tool.get("name", ""))):
                problems.append(f"tools.{i}.name: must match {_TOOL_NAME.pattern}")
                continue
            names.add(tool["name"])
            schema = tool.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                problems.append(f"tools.{i}.input_schema: must be an object schema")
            if not isinstance(tool.get("description", ""), str):
                problems.append(f"tools.{i}.description: must be a string")
            extra = set(tool) - {"name", "description", "input_schema", "cache_control", "type"}
            problems += [f"tools.{i}.{key}: Extra inputs are not permitted" for key in extra]
    if tool_choice is not None:
        kind = tool_choice.get("type") if isinstance(tool_choice, dict) else None
        if kind not in ("auto", "any", "tool", "none"):
            problems.append(f"tool_choice.type: unknown {kind!r}")
        elif kind == "tool" and tool_choice.get("name") not in names:
            problems.append("tool_choice.name: must name one of the tools")
        if not names:
            problems.append("tool_choice: only allowed with tools")
    return problems
