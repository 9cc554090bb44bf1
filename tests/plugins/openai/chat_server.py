"""A scripted Chat Completions server, written from the public API reference.

``POST /v1/chat/completions`` with ``stream: true`` answers with server-sent
events: ``data: <chat.completion.chunk JSON>`` lines, then ``data: [DONE]``.
Each request takes the next scripted :class:`Reply`; every request is
recorded (headers and JSON body) so tests can assert what the client sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

ToolStyle = Literal["openai", "ollama", "no-index"]


@dataclass
class Reply:
    """One scripted answer.

    Attributes:
        text: Content, streamed a few characters per chunk.
        tool_calls: ``(name, arguments_json)`` pairs.
        style: How tool calls are streamed (see ``tool_calls.py``).
        status: An HTTP error status to answer with instead.
        drop_after: Close the connection after this many chunks.
        hang: Never send anything after the headers.
        silent: Never answer at all, not even the headers.
        garbage_after: After this many chunks, send an event whose data is not JSON.
        error_after: After this many chunks, send an ``{"error": ...}`` object
            with this ``(code, message)``.
        delay: Seconds between chunks.
        respond: Computes the reply from the request body instead.
    """

    text: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)
    style: ToolStyle = "openai"
    status: int | None = None
    drop_after: int | None = None
    hang: bool = False
    silent: bool = False
    garbage_after: int | None = None
    error_after: tuple[int, str, str] | None = None
    delay: float = 0.0
    respond: Callable[[dict[str, Any]], Reply] | None = None


@dataclass
class Recorded:
    headers: dict[str, str]
    body: dict[str, Any]


class ChatServer:
    """Run with ``async with ChatServer(key) as server``; ``server.base_url`` ends in ``/v1``."""

    def __init__(self, api_key: str = "test-key", default: Reply | None = None) -> None:
        self.api_key = api_key
        self.default = default or Reply(text="Hello there.")
        self.script: list[Reply] = []
        self.requests: list[Recorded] = []
        self.model_lists: list[Recorded] = []
        self.disconnects = 0
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> ChatServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _models(self, request: web.Request) -> web.Response:
        self.model_lists.append(Recorded(dict(request.headers), {}))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        model = {"id": "test-model", "object": "model", "created": 0, "owned_by": "test"}
        return web.json_response({"object": "list", "data": [model]})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(Recorded(dict(request.headers), body))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        problem = _check_request(body)
        if problem:
            return _error(400, problem, "invalid_request_error")
        reply = self.script.pop(0) if self.script else self.default
        if reply.respond is not None:
            reply = reply.respond(body)
        if reply.status is not None:
            code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(reply.status)
            code = code or ("server_error" if reply.status >= 500 else "invalid_request_error")
            return _error(reply.status, f"scripted status {reply.status}", code)
        if reply.silent:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.disconnects += 1
                raise
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            if reply.hang:
                await asyncio.sleep(3600)
            chunks = list(_chunks(reply, body))
            for n, chunk in enumerate(chunks):
                if reply.drop_after is not None and n >= reply.drop_after:
                    request.transport.close()  # type: ignore[union-attr]
                    return response
                if reply.garbage_after is not None and n >= reply.garbage_after:
                    await response.write(b"data: {not json\n\n")
                    return response
                if reply.error_after is not None and n >= reply.error_after[0]:
                    _, code, message = reply.error_after
                    error = {"message": message, "type": code, "param": None, "code": code}
                    await response.write(f"data: {json.dumps({'error': error})}\n\n".encode())
                    return response
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
                if reply.delay:
                    await asyncio.sleep(reply.delay)
            await response.write(b"data: [DONE]\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            self.disconnects += 1
            raise
        return response


def _check_request(body: dict[str, Any]) -> str | None:
    """The parts of the reference the client must get right."""
    if body.get("stream") is not True:
        return "stream must be true"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model is required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty array"
    for m in messages:
        if m.get("role") not in {"system", "developer", "user", "assistant", "tool"}:
            return f"bad role {m.get('role')!r}"
        if m["role"] == "tool" and not m.get("tool_call_id"):
            return "tool messages need tool_call_id"
        for call in m.get("tool_calls") or ():
            if call.get("type") != "function" or not isinstance(call["function"]["arguments"], str):
                return "tool_calls[].function.arguments must be a string"
    for tool in body.get("tools") or ():
        if tool.get("type") != "function" or "name" not in tool.get("function", {}):
            return "tools[] must be {type: function, function: {name, ...}}"
    return None


def _error(status: int, message: str, code: str) -> web.Response:
    payload = {"error": {"message": message, "type": code, "param": None, "code": code}}
    return web.json_response(payload, status=status)


def _chunks(reply: Reply, body: dict[str, Any]) -> Any:
    base = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body["model"],
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    text = reply.text
    for start in range(0, len(text), 4):
        yield chunk({"content": text[start : start + 4]})
    for n, (name, arguments) in enumerate(reply.tool_calls):
        call_id = f"call_{n}"
        if reply.style == "ollama":  # whole call in one delta, every call at index 0
            fn = {"name": name, "arguments": arguments}
            yield chunk({"tool_calls": [{"index": 0, "id": call_id, "type": "function", "function": fn}]})
            continue
        index = {} if reply.style == "no-index" else {"index": n}
        head = {**index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
        yield chunk({"tool_calls": [head]})
        for start in range(0, len(arguments), 5):
            piece = {**index, "function": {"arguments": arguments[start : start + 5]}}
            yield chunk({"tool_calls": [piece]})
    yield chunk({}, "tool_calls" if reply.tool_calls else "stop")
    if body.get("stream_options", {}).get("include_usage"):
        yield {**base, "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}
