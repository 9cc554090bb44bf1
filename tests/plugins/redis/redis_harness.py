"""Start and stop a throwaway redis-server for the tests (used by conftest.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

# Read at import: the root conftest clears VOCALIS_* for every test function.
REQUIRE_REDIS = bool(os.environ.get("VOCALIS_REQUIRE_REDIS"))
START_DEADLINE = 30.0  # seconds for redis-server to answer PING, generous for a loaded box


def free_port() -> int:
    """A loopback port nothing listens on (the kernel's pick, released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_ping(port: int) -> bool:
    """Whether a Redis server on ``port`` answers ``PING`` with ``+PONG``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def start_server(binary: str, directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start redis-server on a free port; retry on another if that one was taken meanwhile."""
    for _attempt in range(3):
        port = free_port()
        log = directory / f"redis-{port}.log"
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--dir", str(directory), "--logfile", str(log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline and proc.poll() is None:
            if answers_ping(port):
                return proc, port
            time.sleep(0.05)
        stop_server(proc)
    text = log.read_text(errors="replace") if log.exists() else "(no log)"
    raise RuntimeError(f"redis-server did not start; its last log:\n{text}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop redis-server and reap it, killing it if it does not exit."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def find_server() -> str | None:
    """The redis-server binary, if installed."""
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).exists()), None
    )
