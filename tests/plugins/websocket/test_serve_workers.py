"""``vocalis serve`` as a process: workers, signals and resume over ``/ws``.

Each test runs ``python -m vocalis.testing.serve_fakes`` (the real serving
stack with fake providers; its agent answers every typed turn with all the
user's messages so far, ``heard: one | two``) and talks to it as a client
would. Which worker serves a connection is read from ``/proc``: the worker
whose open sockets include the server side of it. Nothing here times the
server; every wait polls with a generous deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

TOKEN = "workers-token-0d9c8b7a"
DEADLINE = 60.0  # seconds for anything to happen on a loaded 2-core box


# -- the server process ----------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Fakes:
    """One ``serve_fakes`` process (a supervisor with ``--workers``), its output in files."""

    def __init__(self, directory: Path, *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.out, self.err = directory / "stdout.log", directory / "stderr.log"
        argv = [sys.executable, "-m", "vocalis.testing.serve_fakes", "--port", str(self.port), "--token", TOKEN]
        with self.out.open("wb") as stdout, self.err.open("wb") as stderr:
            self.proc = subprocess.Popen([*argv, *args], stdout=stdout, stderr=stderr)

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def log(self) -> str:
        return f"stdout:\n{self.stdout()[-3000:]}\nstderr:\n{self.err.read_text(errors='replace')[-3000:]}"

    def listening(self, ready: str) -> bool:
        return ready in self.stdout() or self.proc.poll() is not None

    def kill(self) -> None:
        """Kill it and its workers (in their own sessions, they would outlive a killed supervisor)."""
        if self.proc.poll() is None:
            for pid in children(self.proc.pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.kill()


@contextlib.contextmanager
def running(directory: Path, *args: str) -> Iterator[Fakes]:
    """For sync code (a fixture): start, wait until it listens, kill at the end."""
    fakes = Fakes(directory, *args)
    try:
        wait_for(lambda: fakes.listening("serving http"), "the server to listen")
        assert fakes.proc.poll() is None, fakes.log()
        yield fakes
    finally:
        fakes.kill()
        fakes.proc.wait(DEADLINE)


@contextlib.asynccontextmanager
async def running_async(directory: Path, *args: str, ready: str = "serving http") -> AsyncIterator[Fakes]:
    """For a test's event loop: the same, waiting without blocking the loop."""
    fakes = Fakes(directory, *args)
    try:
        await until(lambda: fakes.listening(ready), "the server to listen")
        assert fakes.proc.poll() is None, fakes.log()
        yield fakes
    finally:
        fakes.kill()
        await until(lambda: fakes.proc.poll() is not None, "the server to exit")


def wait_for(condition: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


async def until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while not condition():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


# -- /proc: who is whose child, who holds which socket --------------------------------
def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                # "pid (name) state ppid ...": the name may hold spaces, so split after its ")".
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def sockets_of(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def tcp_sockets(port: int, state: str) -> dict[str, str]:
    """inode -> remote address of the IPv4 sockets on local ``port`` in ``state`` (01 established, 0A listen)."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            found[fields[9]] = fields[2]
    return found


def connections_per_worker(port: int, workers: set[int]) -> dict[int, int]:
    established = tcp_sockets(port, "01")
    return {pid: len(sockets_of(pid) & established.keys()) for pid in workers}


def listening(pid: int, port: int) -> bool:
    return bool(sockets_of(pid) & tcp_sockets(port, "0A").keys())


# -- a /ws client -------------------------------------------------------------------
async def next_event(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(DEADLINE):
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.BINARY:
                continue  # the agent's audio
            assert msg.type is aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
            event: dict[str, Any] = json.loads(msg.data)
            if event.get("type") == kind:
                return event


async def connect(
    http: aiohttp.ClientSession, base: str, **query: str
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    """Open ``/ws``; returns the socket and its ``session`` event."""
    ws = await http.ws_connect(f"{base}/ws", params={"token": TOKEN, **query}, heartbeat=None)
    return ws, await next_event(ws, "session")


async def say(ws: aiohttp.ClientWebSocketResponse, text: str) -> str:
    await ws.send_str(json.dumps({"type": "text", "text": text}))
    return str((await next_event(ws, "agent_turn"))["text"])


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
    """Read to the end; the close code and reason the server sent."""
    async with asyncio.timeout(DEADLINE):
        while True:
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return ws.close_code, str(msg.extra or "")


async def status(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(url) as response:
        return response.status, await response.json()


# -- resume in one process (memory store) ---------------------------------------------
@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fakes]:
    with running(tmp_path_factory.mktemp("fakes"), "--ttft", "0.01") as fakes:
        yield fakes


async def test_a_dropped_session_resumes_with_its_conversation(fakes: Fakes) -> None:
    async with aiohttp.ClientSession() as http:
        ws, first = await connect(http, fakes.base)
        assert first["resumed"] is False and first["items"] == 0
        session_id = first["session_id"]
        assert await say(ws, "one") == "heard: one"
        await ws.close()  # the connection drops
        ws, again = await connect(http, fakes.base, session=session_id)
        assert again["session_id"] == session_id and again["resumed"] is True, again
        assert again["items"] >= 2, again  # "one" and its answer
        assert await say(ws, "two") == "heard: one | two"
        await ws.close()


async def test_an_unknown_session_id_starts_a_new_session(fakes: Fakes) -> None:
    async with aiohttp.ClientSession() as http:
        ws, event = await connect(http, fakes.base, session="s_nobody_knows_this_one")
        assert event["resumed"] is False and event["items"] == 0, event
        assert await say(ws, "hello") == "heard: hello"  # nothing from anyone else's conversation
        await ws.close()


@pytest.mark.parametrize(
    "bad", ["../../x", "x" * 500, "a b", "s_1;drop"], ids=["path", "500 chars", "space", "semicolon"]
)
async def test_a_malformed_session_id_is_refused(fakes: Fakes, bad: str) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(f"{fakes.base}/ws", params={"token": TOKEN, "session": bad}, heartbeat=None)
        code, reason = await closed_with(ws)
        assert (code, reason) == (1008, "invalid session id")


# -- signals ----------------------------------------------------------------------
async def test_a_second_sigterm_forces_the_exit_during_a_long_drain(tmp_path: Path) -> None:
    async with running_async(tmp_path, "--drain-timeout", "120") as fakes:
        async with aiohttp.ClientSession() as http:
            ws, _ = await connect(http, fakes.base)
            assert await say(ws, "stay") == "heard: stay"
            fakes.proc.send_signal(signal.SIGTERM)
            # Draining: no new sessions, the running one goes on (for up to 120 s).
            draining: list[dict[str, Any]] = []

            async def check() -> None:
                code, body = await status(http, f"{fakes.base}/readyz")
                if code == 503 and body["reason"] == "draining":
                    draining.append(body)

            loop = asyncio.get_running_loop()
            end = loop.time() + DEADLINE
            while not draining:
                assert loop.time() < end and fakes.proc.poll() is None, fakes.log()
                await check()
                await asyncio.sleep(0.05)
            assert draining[0]["sessions"] == 1 and draining[0]["accepting"] is False
            assert await say(ws, "still here") == "heard: stay | still here"
            assert fakes.proc.poll() is None
            fakes.proc.send_signal(signal.SIGTERM)
            code, reason = await closed_with(ws)
            await until(lambda: fakes.proc.poll() is not None, "the forced exit")
        assert code == 1001, (code, reason, fakes.log())  # closed for shutdown: the client may resume elsewhere
        assert fakes.proc.returncode == 0, fakes.log()
        assert "second signal" in fakes.err.read_text(), fakes.log()


# -- workers ----------------------------------------------------------------------
async def test_workers_share_the_port_are_restarted_and_stop_together(tmp_path: Path) -> None:
    async with running_async(tmp_path, "--workers", "2", ready="Vocalis is serving with 2 workers") as fakes:
        supervisor = fakes.proc.pid
        await until(lambda: len(children(supervisor)) == 2, "two workers")
        workers = children(supervisor)
        await until(lambda: all(listening(pid, fakes.port) for pid in workers), "both workers to listen")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True)) as http:
            clients = [await connect(http, fakes.base) for _ in range(20)]
            assert len({event["session_id"] for _, event in clients}) == 20
            spread = connections_per_worker(fakes.port, workers)
            assert sum(spread.values()) == 20 and all(spread.values()), spread  # the kernel spread them
            for ws, _ in clients:
                await ws.close()
            await until(lambda: not any(connections_per_worker(fakes.port, workers).values()), "the clients to leave")

            # A worker that dies is replaced, and the new one serves.
            killed = min(workers)
            os.kill(killed, signal.SIGKILL)
            await until(lambda: len(children(supervisor) - workers) == 1, "a new worker")
            (new,) = children(supervisor) - workers
            assert children(supervisor) == workers - {killed} | {new}
            await until(lambda: listening(new, fakes.port), "the new worker to listen")
            served_by_new = 0
            for _ in range(60):  # each connection has an even chance of reaching it
                ws, _ = await connect(http, fakes.base)
                served_by_new = connections_per_worker(fakes.port, {new})[new]
                assert await say(ws, "are you there") == "heard: are you there"
                await ws.close()
                if served_by_new:
                    break
            assert served_by_new, "the restarted worker took no connection"
        assert "worker 1 exited" in fakes.err.read_text() or "worker 2 exited" in fakes.err.read_text(), fakes.log()

        # SIGTERM to the supervisor: every worker drains and exits, then the supervisor, all with 0.
        everyone = children(supervisor)
        fakes.proc.send_signal(signal.SIGTERM)
        await until(lambda: fakes.proc.poll() is not None, "the supervisor to exit")
        assert fakes.proc.returncode == 0, fakes.log()
        await until(lambda: not any(alive(pid) for pid in everyone | {killed}), "every worker to be gone")
        assert fakes.stdout().count("Vocalis is serving with 2 workers") == 1, fakes.log()
        assert fakes.stdout().count("serving http") == 3, fakes.log()  # two workers, then the replacement
