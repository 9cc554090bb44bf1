"""One WebSocket of the test server: its contexts, generated in order, and their records.

See :mod:`cartesia_server` for the server and :mod:`cartesia_protocol` for the rules.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from cartesia_protocol import (
    cancel_problems,
    continuation_problems,
    error_message,
    generation_problems,
    speech_pcm,
    word_times,
)

if TYPE_CHECKING:
    from cartesia_server import CartesiaServer


@dataclass
class ContextRecord:
    """What happened to one context."""

    context_id: str
    connection: int
    inputs: list[dict[str, Any]] = field(default_factory=list)
    chunks: int = 0
    closed: bool = False  # the client sent continue: false
    cancelled: bool = False
    expired: bool = False
    failed: bool = False
    done_sent: bool = False

    @property
    def transcript(self) -> str:
        """The context's text, joined verbatim as the server joins it."""
        return "".join(body["transcript"] for body in self.inputs)


@dataclass
class Live:
    """A context being generated: its record, its inputs to come, its task."""

    record: ContextRecord
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


class WebSocketConnection:
    """One WebSocket: its contexts' generations and its chunk count."""

    def __init__(self, server: CartesiaServer, index: int, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.server = server
        self.index = index
        self.ws = ws
        self.request = request
        self.chunks = 0
        self.live: dict[str, Live] = {}
        self._send_lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            if not self.ws.closed:
                await self.ws.send_str(json.dumps(message))

    def stop(self) -> None:
        for live in self.live.values():
            if live.task is not None:
                live.task.cancel()

    async def handle(self, text: str) -> None:
        server = self.server
        try:
            body = json.loads(text)
        except ValueError:
            server.violations.append(f"a text frame that is not JSON: {text[:40]!r}")
            await self.send(error_message(None, 400, "invalid JSON", style=server.error_style))
            return
        server.received.append((self.index, body))
        if isinstance(body, dict) and "cancel" in body:
            server.violations += cancel_problems(body)
            live = self.live.get(str(body.get("context_id")))
            if live is not None:
                if live.record.cancelled:
                    server.violations.append(f"context {live.record.context_id} cancelled twice")
                live.record.cancelled = True
                if live.task is not None:
                    live.task.cancel()
            return
        problems = generation_problems(body, websocket=True)
        context_id = body.get("context_id") if isinstance(body, dict) else None
        if problems:
            server.violations += problems
            await self.send(error_message(context_id, 400, "; ".join(problems), style=server.error_style))
            return
        live = self.live.get(context_id)
        if live is None:
            if context_id in server.contexts:
                server.violations.append(f"context id {context_id} reused")
            live = Live(ContextRecord(context_id, self.index))
            server.contexts[context_id] = live.record
            self.live[context_id] = server._live[context_id] = live
            if server.fail_status is not None:
                live.record.failed = True
                error = error_message(context_id, server.fail_status, "generation failed", style=server.error_style)
                await self.send(error)
                return
            live.task = asyncio.get_running_loop().create_task(self._generate(live))
        else:
            ctx = live.record
            if ctx.cancelled or ctx.closed:
                server.violations.append(f"input to context {context_id} after the client ended it")
                return
            if ctx.failed:
                return  # sent before the client saw the error
            if ctx.expired:
                await self.send(error_message(context_id, 400, "context has closed", style=server.error_style))
                return
            server.violations += continuation_problems(ctx.inputs[0], body, ctx.transcript)
        live.record.inputs.append(body)
        live.record.closed = not body.get("continue", False)
        live.queue.put_nowait(body)

    async def _generate(self, live: Live) -> None:
        server, ctx = self.server, live.record
        flush_id, offset, first = server.first_flush_id, 0.0, True
        while True:
            try:
                body = await asyncio.wait_for(live.queue.get(), server.context_expiry)
            except TimeoutError:
                ctx.expired = True
                ctx.done_sent = True
                await self.send({"type": "done", "done": True, "status_code": 206, "context_id": ctx.context_id})
                return
            if body.get("flush"):
                await self.send(self._message("flush_done", ctx, flush_id, flush_done=True))
                flush_id += 1
                continue
            transcript = body["transcript"]
            rate = body["output_format"]["sample_rate"]
            pcm, step = speech_pcm(transcript, rate), 2 * int(rate * server.chunk_seconds)
            # Word timestamps (seconds of the context's audio) follow the chunk whose audio completes them.
            timed = word_times(transcript, offset) if body.get("add_timestamps") else []
            if pcm and first:
                first = False
                await asyncio.sleep(server.first_chunk_delay)
            for start in range(0, len(pcm), step):
                await server._hold(ctx.chunks)
                await asyncio.sleep(server.chunk_interval)
                if server.close_after_chunks == 0:  # dropped before any audio
                    await self._close()
                    return
                data = base64.b64encode(pcm[start : start + step]).decode()
                await self.send(self._message("chunk", ctx, flush_id, data=data, step_time=1.5))
                ctx.chunks += 1
                self.chunks += 1
                if server.close_after_chunks is not None and self.chunks >= server.close_after_chunks:
                    await self._close()
                    return
                sent_until = offset + min(len(pcm), start + step) / 2 / rate
                done_words = [w for w in timed if w[2] <= sent_until + 1e-9]
                if done_words:
                    timed = timed[len(done_words) :]
                    stamps = {key: [w[i] for w in done_words] for i, key in enumerate(("words", "start", "end"))}
                    await self.send(self._message("timestamps", ctx, flush_id, word_timestamps=stamps))
            offset += len(pcm) / 2 / rate
            if not body.get("continue", False):
                ctx.done_sent = True
                await self.send({"type": "done", "done": True, "status_code": 206, "context_id": ctx.context_id})
                return

    def _message(self, kind: str, ctx: ContextRecord, flush_id: int, **fields: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"type": kind, "done": False, "status_code": 206, "context_id": ctx.context_id}
        if self.server.send_flush_ids or kind == "flush_done":
            message["flush_id"] = flush_id
        message.update(fields)
        return message

    async def _close(self) -> None:
        code = self.server.close_code
        if code is None:
            # No close frame: the client sees the TCP connection drop (1006).
            assert self.request.transport is not None
            self.request.transport.abort()
        else:
            with contextlib.suppress(Exception):
                await self.ws.close(code=code, message=b"closing")
