"""Workers, HAProxy and a conversation client for the scale-out tests.

Each worker is ``python -m vocalis.testing.serve_fakes`` (the real serving
stack with fake providers) on its own loopback port, sharing one Redis; an
HAProxy in front health-checks their ``/readyz`` and spreads WebSocket
clients over them. The fake agent answers each typed turn with every user
message so far (``heard: a | b``), so a client can see that its history
came along after it reconnected to another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from redis_harness import free_port

TOKEN = "cluster-test-token"
DEADLINE = 60.0  # seconds for anything to happen on a loaded 2-core box
REQUIRE_HAPROXY = bool(os.environ.get("VOCALIS_REQUIRE_HAPROXY"))


def find_haproxy() -> str | None:
    """Debian's haproxy binary, if installed."""
    return shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if Path(p).exists()), None)


@dataclass
class Worker:
    """One ``serve_fakes`` process."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)


def start_worker(name: str, redis_url: str, directory: Path, *extra: str) -> Worker:
    """Start a worker and wait until it listens."""
    port = free_port()
    log = directory / f"{name}.log"
    argv = [sys.executable, "-m", "vocalis.testing.serve_fakes", "--port", str(port), "--token", TOKEN]
    argv += ["--store", redis_url, "--ttft", "0.02", *extra]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    worker = Worker(name, port, proc, log)
    wait_for(lambda: b"serving http" in log.read_bytes() or proc.poll() is not None, f"{name} to listen")
    assert proc.poll() is None, log.read_text()
    return worker


def haproxy_config(port: int, workers: list[Worker]) -> str:
    """HAProxy in front of ``workers``, as deploy/haproxy does it (faster health checks)."""
    servers = "\n".join(f"    server {w.name} 127.0.0.1:{w.port} check inter 300ms fall 1 rise 1" for w in workers)
    return f"""
global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout http-request 10s
    retries 3
    option redispatch
frontend vocalis
    bind 127.0.0.1:{port}
    default_backend workers
backend workers
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    retry-on conn-failure empty-response response-timeout 503
{servers}
"""


@dataclass
class HAProxy:
    port: int
    proc: subprocess.Popen[bytes]


def start_haproxy(binary: str, workers: list[Worker], directory: Path) -> HAProxy:
    """Start HAProxy and wait until every worker is up behind it."""
    port = free_port()
    config = directory / "haproxy.cfg"
    config.write_text(haproxy_config(port, workers))
    log = directory / "haproxy.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT)
    wait_for(lambda: _ready_through(port) or proc.poll() is not None, "haproxy to route")
    assert proc.poll() is None, log.read_text()
    return HAProxy(port, proc)


def _ready_through(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate and reap (kill after a grace), leaving nothing behind."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(condition: Any, what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@dataclass
class Caller:
    """One conversation over ``/ws``, reconnecting with its session id when dropped."""

    base: str
    http: aiohttp.ClientSession
    session_id: str | None = None
    ws: aiohttp.ClientWebSocketResponse | None = None
    resumed: int = 0
    refusals: int = 0
    replies: list[str] = field(default_factory=list)

    async def connect(self) -> None:
        """Open ``/ws`` (resuming when there is a session id), retrying refusals."""
        loop = asyncio.get_running_loop()
        end = loop.time() + DEADLINE
        while True:
            query = f"?token={TOKEN}" + (f"&session={self.session_id}" if self.session_id else "")
            try:
                ws = await self.http.ws_connect(f"{self.base}/ws{query}", heartbeat=None)
                event = await self._next(ws, "session")
            except (aiohttp.ClientError, ConnectionError, Refused):
                self.refusals += 1
                if loop.time() > end:
                    raise
                await asyncio.sleep(0.2)
                continue
            if self.session_id is not None:
                assert event["session_id"] == self.session_id and event["resumed"], event
                self.resumed += 1
            self.session_id = event["session_id"]
            self.ws = ws
            return

    async def say(self, text: str) -> str:
        """Type ``text``; returns the agent's answer (reconnecting first if the socket closed)."""
        for _ in range(5):
            if self.ws is None or self.ws.closed:
                await self.connect()
            assert self.ws is not None
            try:
                await self.ws.send_str(json.dumps({"type": "text", "text": text}))
                turn = await self._next(self.ws, "agent_turn")
            except (Refused, ConnectionError, aiohttp.ClientError):
                self.ws = None  # dropped mid-turn (the worker shut down): resume and say it again
                continue
            self.replies.append(turn["text"])
            return str(turn["text"])
        raise AssertionError(f"could not say {text!r}")

    async def _next(self, ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(DEADLINE):
            while True:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.BINARY:
                    continue  # the agent's audio
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    raise Refused(f"socket ended: {msg.type} {msg.data!r} {msg.extra!r}")
                event = json.loads(msg.data)
                if event.get("type") == kind:
                    return dict(event)

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            with contextlib.suppress(Exception):
                await self.ws.send_str(json.dumps({"type": "end"}))
            await self.ws.close()


class Refused(Exception):
    """The server closed the socket (refused, shut down) before the expected event."""
