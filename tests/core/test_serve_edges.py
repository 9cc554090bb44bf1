"""The serving socket's edge under attack (probes turned into tests).

Idle and byte-at-a-time sockets, a flood from one address, a process with
few file descriptors flooded with connections, and malformed requests that
carry the token: the caps of :class:`~vocalis.serve.edges.ConnectionGuard`
hold, ``/livez`` keeps answering from another address, the logs stay small
and the token appears in none of them. Linux routes all of 127/8 to the
loopback interface, so a client bound to 127.0.0.2 is "another address".
No test times anything: they poll with generous deadlines, and the servers
under test get short timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from vocalis import Agent, CascadingPipeline
from vocalis.serve.edges import Throttle, quiet_accept_errors
from vocalis.serve.http import serve
from vocalis.serve.server import ServeOptions, SessionServer
from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD

TOKEN = "Zq7kP2wX9mR4vLt8sYcB3nQe"
DEADLINE = 60.0  # seconds for anything to happen on a loaded 2-core box
OTHER = "127.0.0.2"  # another client address on the loopback interface

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter


def make_server(**options: Any) -> SessionServer:
    return SessionServer(
        lambda: Agent("Be brief."),
        lambda: CascadingPipeline(stt=FakeSTT([]), llm=FakeLLM(["ok"]), tts=FakeTTS(), vad=FakeVAD()),
        ServeOptions(port=0, token=TOKEN, **options),
    )


@contextlib.asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[tuple[SessionServer, int]]:
    """``serve()`` in this loop (no transports: the health routes only); yields the server and port."""
    server = make_server(**options)
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(server, [], ready=ready.set_result, stop=stop))
    url = await asyncio.wait_for(ready, DEADLINE)
    try:
        yield server, int(url.split(":")[2].split("/")[0])
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)


async def until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while not condition():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def read_all(reader: Reader) -> bytes | None:
    """Everything the server sends until it closes; None when it reset the connection."""
    try:
        return await reader.read()
    except ConnectionResetError:
        return None


def refused(reply: bytes | None) -> bool:
    """The guard's refusal: a 503 with Retry-After."""
    return reply is not None and reply.startswith(b"HTTP/1.1 503 ") and b"\r\nRetry-After: " in reply


async def livez(port: int, source: str) -> bytes | None:
    """``GET /livez`` from ``source``; the whole reply, or None when reset."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    writer.write(b"GET /livez HTTP/1.1\r\nHost: vocalis\r\nConnection: close\r\n\r\n")
    try:
        return await asyncio.wait_for(read_all(reader), DEADLINE)
    finally:
        writer.close()


async def close_all(writers: list[Writer]) -> None:
    for writer in writers:
        writer.close()
    for writer in writers:
        with contextlib.suppress(OSError):
            await writer.wait_closed()


# -- caps and deadlines ------------------------------------------------------------
def _start_serving() -> None:
    """Named like asyncio's listener retry, which shows in a handle's repr."""


async def test_idle_sockets_over_the_pending_cap_get_a_503_with_retry_after() -> None:
    async with serving(max_pending_connections=20, max_connections_per_client=0, header_timeout=600.0) as (
        server,
        port,
    ):
        guard = server.guard
        assert guard is not None
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(60)]
        reads = [asyncio.create_task(read_all(reader)) for reader, _ in conns]
        await until(lambda: guard.refused + guard.pending == 60, "every connection to be accepted")
        assert (guard.pending, guard.refused) == (20, 40)
        await until(lambda: sum(r.done() for r in reads) == 40, "the refused connections to be closed")
        assert all(refused(r.result()) for r in reads if r.done())
        # The 20 held ones wait for their headers (the deadline is far off): nothing came.
        assert len(server.guard.clients) == 1 and guard.total == 20
        await close_all([writer for _, writer in conns])
        await until(lambda: guard.pending == 0 and guard.total == 0, "the held connections to be counted out")
        assert (await livez(port, "127.0.0.1") or b"").startswith(b"HTTP/1.1 200 ")


async def test_idle_and_byte_at_a_time_sockets_are_closed_by_the_header_timeout() -> None:
    async with serving(max_pending_connections=64, max_connections_per_client=0, header_timeout=1.0) as (
        server,
        port,
    ):
        guard = server.guard
        assert guard is not None
        t_reader, t_writer = await asyncio.open_connection("127.0.0.1", port)
        trickled = asyncio.create_task(read_all(t_reader))
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
        reads = [asyncio.create_task(read_all(reader)) for reader, _ in idle]
        # Headers that never end: one byte every 0.3 s, as a slowloris client sends them.
        request = b"GET /livez HTTP/1.1\r\nHost: vocalis\r\nX-Slow: " + b"a" * 10_000
        sent = 0
        loop = asyncio.get_running_loop()
        end = loop.time() + DEADLINE
        while not trickled.done():
            assert loop.time() < end, "the byte-at-a-time sender was never closed"
            with contextlib.suppress(OSError):
                t_writer.write(request[sent : sent + 1])
            sent += 1
            await asyncio.sleep(0.3)
        assert sent < len(request)
        await until(lambda: all(r.done() for r in reads), "the idle connections to be closed")
        # Closed without an answer (reset): none of them sent a request.
        assert trickled.result() in (None, b"") and all(r.result() in (None, b"") for r in reads)
        assert guard.timed_out == 21 and guard.refused == 0
        await until(lambda: guard.pending == 0 and guard.total == 0, "the closed connections to be counted out")
        await close_all([t_writer, *(writer for _, writer in idle)])


async def test_a_flood_from_one_address_leaves_livez_to_the_others() -> None:
    async with serving(max_pending_connections=100, max_connections_per_client=30, header_timeout=600.0) as (
        server,
        port,
    ):
        guard = server.guard
        assert guard is not None
        conns = [await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.1", 0)) for _ in range(60)]
        reads = [asyncio.create_task(read_all(reader)) for reader, _ in conns]
        await until(lambda: guard.refused + guard.pending == 60, "every connection to be accepted")
        assert guard.clients == {"127.0.0.1": 30} and guard.refused == 30
        await until(lambda: sum(r.done() for r in reads) == 30, "the refused connections to be closed")
        assert all(refused(r.result()) for r in reads if r.done())
        # The flooding address is at its cap, even for /livez; another address is served.
        assert refused(await livez(port, "127.0.0.1"))
        reply = await livez(port, OTHER)
        assert reply is not None and reply.startswith(b"HTTP/1.1 200 ") and b'"alive": true' in reply, reply
        await close_all([writer for _, writer in conns])


def test_accept_failures_become_one_throttled_warning() -> None:
    """EMFILE on accept(): asyncio logs a traceback per failure; the server says it once per interval."""
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(message.record["message"]), level="DEBUG")
    loop = asyncio.new_event_loop()
    passed: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: passed.append(context))
    now = [0.0]
    restore = quiet_accept_errors(loop, Throttle(interval=10.0, clock=lambda: now[0]))
    try:
        error = OSError(24, "Too many open files")
        for second in range(30):
            now[0] = float(second)
            loop.call_exception_handler({"message": "socket.accept() out of system resource", "exception": error})
        loop.call_exception_handler({"message": "something else", "exception": RuntimeError("kept")})
        # A retry asyncio scheduled before the listener closed, firing on its closed socket.
        stale = loop.call_later(3600, _start_serving)
        invalid = ValueError("Invalid file descriptor: -1")
        loop.call_exception_handler({"message": "Exception in callback", "exception": invalid, "handle": stale})
        stale.cancel()
    finally:
        loop.run_until_complete(restore())
        loop.close()
        logger.remove(sink)
    accepts = [line for line in lines if line.startswith("accepting connections failed")]
    assert len(accepts) == 3, lines  # at 0, 10 and 20 s
    assert "(9 more since the last report)" in accepts[1]
    # Other errors still reach the previous handler.
    assert [c["message"] for c in passed] == ["something else"]


# -- a real process with few file descriptors ----------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# serve_fakes with an open-file limit of 128, soft and hard (set in the child before it
# imports anything: no preexec_fn, which is unsafe in a process with threads).
FEW_DESCRIPTORS = (
    "import resource, runpy; resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128)); "
    "runpy.run_module('vocalis.testing.serve_fakes', run_name='__main__')"
)


def http_livez(port: int, source: str) -> int | None:
    """The status of ``GET /livez`` from ``source``, or None when refused or closed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", "/livez")
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def flood(port: int, sockets: list[socket.socket], stop: threading.Event, count: int) -> None:
    """Keep ``count`` idle connections open from 127.0.0.1, reopening those the server closes."""
    while not stop.is_set():
        sockets[:] = [s for s in sockets if not _closed_by_peer(s)]
        while len(sockets) < count and not stop.is_set():
            try:
                sockets.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            except OSError:
                break
        time.sleep(0.05)


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        sock.setblocking(False)
        data = sock.recv(4096)
    except BlockingIOError:
        return False
    except OSError:
        data = b""
    if data:
        return False  # the 503: its close comes next
    sock.close()
    return True


def test_a_flood_on_few_file_descriptors_leaves_livez_up_and_the_logs_small(tmp_path: Path) -> None:
    port = free_port()
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    argv = [sys.executable, "-c", FEW_DESCRIPTORS, "--port", str(port), "--token", TOKEN]
    # The per-client cap of a default `vocalis serve` (64): one flooding address cannot take every place.
    argv += ["--max-connections-per-client", "64"]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr)
    try:
        end = time.monotonic() + DEADLINE
        while b"serving http" not in out.read_bytes():
            assert proc.poll() is None and time.monotonic() < end, err.read_text()
            time.sleep(0.05)
        limits = Path(f"/proc/{proc.pid}/limits").read_text().splitlines()
        assert [line.split()[3:5] for line in limits if line.startswith("Max open files")] == [["128", "128"]]
        sockets: list[socket.socket] = []
        stop = threading.Event()
        flooder = threading.Thread(target=flood, args=(port, sockets, stop, 400), daemon=True)
        flooder.start()
        try:
            while len(sockets) < 400:
                assert flooder.is_alive() and time.monotonic() < end, f"{len(sockets)} connections opened"
                time.sleep(0.05)
            statuses = []
            while 200 not in statuses:
                assert proc.poll() is None and time.monotonic() < end, (statuses[-10:], err.read_text()[-2000:])
                statuses.append(http_livez(port, OTHER))
                time.sleep(0.1)
            time.sleep(2.0)  # let it run a little longer under the flood
            assert proc.poll() is None, err.read_text()[-2000:]
        finally:
            stop.set()
            flooder.join(DEADLINE)
            for sock in sockets:
                sock.close()
        end = time.monotonic() + DEADLINE
        while http_livez(port, "127.0.0.1") != 200:  # the flood is over: everyone is served again
            assert proc.poll() is None and time.monotonic() < end, err.read_text()[-2000:]
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(DEADLINE)
    log = err.read_bytes()
    assert len(log) < 50_000, log[-2000:]
    assert log.count(b"Traceback") <= 2, log[-5000:]


# -- the token in no log line -------------------------------------------------------
_PAD = b"a" * 10_000
MALFORMED = {
    "invalid header byte": f"GET /?token={TOKEN} HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n".encode(),
    "bad method": f"BR\x01W /?token={TOKEN} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    "bad version": f"GET /?token={TOKEN} HTTP/1.1\x01\r\nHost: x\r\n\r\n".encode(),
    "bad query byte": f"GET /?token={TOKEN}\x00 HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    "over-long header": f"GET / HTTP/1.1\r\nAuthorization: Bearer {TOKEN}".encode() + _PAD + b"\r\n\r\n",
    # aiohttp quotes the first 100 bytes of an over-long line: here they end inside the token.
    "over-long line cutting the token": f"GET /{'a' * 85}?token={TOKEN}".encode() + _PAD + b" HTTP/1.1\r\n\r\n",
    "over-long cookie cutting the token": (
        f"GET / HTTP/1.1\r\nHost: x\r\nCookie: x={'a' * 80}; vocalis_token={TOKEN}".encode() + _PAD + b"\r\n\r\n"
    ),
}


def token_pieces(length: int = 6) -> list[str]:
    """Every run of ``length`` characters of the token: a cut-off token leaks too."""
    return [TOKEN[i : i + length] for i in range(len(TOKEN) - length + 1)]


@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=list(MALFORMED))
async def test_malformed_requests_do_not_put_the_token_in_any_log(
    request_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="TRACE", format="{name} {message}\n{exception}")
    try:
        # A server per request: repeated error lines are throttled, and this one must be written.
        async with serving() as (_server, port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request_bytes)
            reply = await asyncio.wait_for(read_all(reader), DEADLINE)
            writer.close()
    finally:
        logger.remove(sink)
    assert reply is not None and reply.startswith(b"HTTP/1.0 400 "), reply
    errors = [r for r in caplog.records if r.name == "aiohttp.server" and "Error handling request" in r.getMessage()]
    assert errors, caplog.text  # the malformed request was logged: the check below has something to check
    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records) + "".join(lines)
    assert [piece for piece in token_pieces() if piece in text] == [], text
