"""``vocalis serve --workers N``: N processes on one port, one supervisor.

Each worker is the same ``vocalis serve`` command run again with
``VOCALIS_SERVE_WORKER`` set: it loads the models once, binds the port with
``SO_REUSEPORT`` (the kernel spreads new connections over the workers) and
serves on its own core. The supervisor holds no socket and no session:

- it starts the workers, each in its own process group (a terminal's Ctrl-C
  reaches the supervisor only, which passes it on exactly once);
- it prints the URL once every worker is listening;
- it passes SIGTERM/SIGINT to every worker (they drain); a second signal is
  passed on too (the workers then close their sessions at once);
- it restarts a worker that dies while serving, at most ``_RESTARTS`` times
  a minute, so a crash loop does not spin;
- it exits when every worker has, with the first non-zero status.

The token and the port are chosen here, so all workers share them: the
token goes to the workers in the environment, never on a command line.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from types import FrameType

WORKER_ENV = "VOCALIS_SERVE_WORKER"
"""Set in a worker's environment: its index (1..N)."""
PORT_ENV = "VOCALIS_SERVE_WORKER_PORT"
READY_FD_ENV = "VOCALIS_SERVE_READY_FD"
_RESTARTS = 5  # per worker per minute
_POLL = 0.2


def is_worker() -> bool:
    """Whether this process is one of ``--workers``' processes."""
    return bool(os.environ.get(WORKER_ENV))


def tell_ready() -> None:
    """A worker says it listens (to the supervisor's pipe)."""
    fd = os.environ.get(READY_FD_ENV)
    if fd:
        try:
            os.write(int(fd), b"r")
            os.close(int(fd))
        except OSError:
            pass


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Supervisor:
    """Runs and watches the worker processes.

    Args:
        workers: How many.
        host: The interface the workers listen on.
        port: Their port (0: a free one, chosen here).
        token: The access token (generated when None).
        command: The worker's command line (default: this ``vocalis`` command again).
    """

    def __init__(
        self, workers: int, host: str, port: int, token: str | None, *, command: list[str] | None = None
    ) -> None:
        self.command = command or [sys.executable, "-c", "from vocalis.cli.main import main; main()", *sys.argv[1:]]
        self.count = workers
        self.host = host
        self.port = port or _free_port(host)
        self.token = token or secrets.token_urlsafe(18)
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.restarts: dict[int, deque[float]] = {i: deque(maxlen=_RESTARTS) for i in range(1, workers + 1)}
        self.signals = 0
        self.status = 0

    def _spawn(self, index: int) -> int:
        """Start worker ``index``; returns the read end of its ready pipe."""
        read, write = os.pipe()
        env = {
            **os.environ,
            WORKER_ENV: str(index),
            PORT_ENV: str(self.port),
            READY_FD_ENV: str(write),
            "VOCALIS_SERVE_TOKEN": self.token,
        }
        self.procs[index] = subprocess.Popen(self.command, env=env, pass_fds=(write,), start_new_session=True)
        os.close(write)
        return read

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    def run(self) -> int:
        """Serve until the workers stop; returns the exit status."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        pipes = {index: self._spawn(index) for index in range(1, self.count + 1)}
        for index, fd in pipes.items():
            ready = os.read(fd, 1)  # blocks until the worker listens, or b"" if it died first
            os.close(fd)
            if not ready and not self.signals:
                print(f"worker {index} failed to start", file=sys.stderr, flush=True)
                self._on_signal(signal.SIGTERM, None)
                self._wait_all()
                return 1
        if not self.signals:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
            url = f"http://{host}:{self.port}/?token={self.token}"
            print(f"Vocalis is serving with {self.count} workers. Open {url}", flush=True)
            print("Ctrl-C stops it (running sessions get --drain-timeout seconds to finish).", flush=True)
        while self.procs:
            time.sleep(_POLL)
            for index, proc in list(self.procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                del self.procs[index]
                if self.signals:
                    self.status = self.status or code
                elif self._may_restart(index):
                    print(f"worker {index} exited with status {code}: restarting it", file=sys.stderr, flush=True)
                    os.close(self._spawn(index))
                else:
                    print(f"worker {index} keeps failing (status {code}): stopping", file=sys.stderr, flush=True)
                    self.status = code or 1
                    self._on_signal(signal.SIGTERM, None)
        return self.status

    def _may_restart(self, index: int) -> bool:
        now = time.monotonic()
        recent = self.restarts[index]
        if len(recent) == recent.maxlen and now - recent[0] < 60:
            return False
        recent.append(now)
        return True

    def _wait_all(self) -> None:
        for proc in self.procs.values():
            proc.wait()
