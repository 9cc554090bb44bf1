"""The serving socket's edge: caps and deadlines before a request is even read.

aiohttp bounds the size of headers but not the time a client takes to send
them, nor how many connections one client (or everyone) may hold open
before authenticating. A :class:`ConnectionGuard` sits between the listening
socket and aiohttp's protocol and enforces:

- a cap on connections whose first request has not arrived yet
  (``max_pending_connections``): idle and byte-at-a-time sockets;
- a cap on connections per client address (``max_connections_per_client``;
  0 turns it off, e.g. behind a proxy that already limits per source);
- a cap on all connections (``max_connections``), below the process's file
  descriptor limit, so ``/livez`` and running calls keep working;
- a deadline for the first request's headers (``header_timeout``).

A refused connection gets a one-line ``503`` with ``Retry-After`` and is
closed; refusals are logged at most once per interval. When the process
runs out of file descriptors anyway, asyncio's "accept() out of system
resource" tracebacks are replaced by one throttled warning line.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 29\r\nConnection: close\r\n\r\ntoo many connections, retry\r\n"
)
_FD_RESERVE = 32  # descriptors kept for models, logs, the store and health checks
_ACCEPT_RETRY_DELAY = 1.0  # asyncio's own (base_events): how long it waits to accept again after EMFILE


def fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1 << 16 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


class Throttle:
    """Lets a log line through at most once per ``interval`` per key, counting the rest.

    Args:
        interval: Seconds between two lines of the same key.
        clock: Monotonic seconds (injectable for tests).
    """

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def allow(self, key: str) -> int | None:
        """None to stay quiet; else how many lines of ``key`` were held back since the last one."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] += 1
            return None
        self._last[key] = now
        return self._suppressed.pop(key, 0)


class ConnectionGuard:
    """Counts connections and applies the caps; see the module docstring.

    Args:
        max_pending: Connections at once whose first request has not arrived.
        per_client: Connections at once from one address (0: no cap).
        max_connections: Connections at once in all (0: from the fd limit).
        header_timeout: Seconds a new connection gets to send its first request's headers.
        throttle: Shared log throttle.
    """

    def __init__(
        self,
        *,
        max_pending: int = 128,
        per_client: int = 64,
        max_connections: int = 0,
        header_timeout: float = 10.0,
        throttle: Throttle | None = None,
    ) -> None:
        self.max_pending = max_pending
        self.per_client = per_client
        self.max_connections = max_connections or max(16, fd_limit() - _FD_RESERVE)
        self.header_timeout = header_timeout
        self.throttle = throttle or Throttle()
        self.pending = 0
        self.total = 0
        self.refused = 0
        self.timed_out = 0
        self.clients: Counter[str] = Counter()

    def wrap(self, factory: Callable[[], asyncio.BaseProtocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory that guards each connection ``factory`` would serve."""
        return lambda: _GuardedProtocol(self, factory)

    def refusal(self, client: str) -> str | None:
        """Why a new connection from ``client`` is refused, or None to accept it."""
        if self.total >= self.max_connections:
            return f"{self.total} connections open (the cap is {self.max_connections})"
        if self.pending >= self.max_pending:
            return f"{self.pending} connections have not sent a request yet (the cap is {self.max_pending})"
        if self.per_client and self.clients[client] >= self.per_client:
            return f"{client} holds {self.clients[client]} connections (the cap is {self.per_client})"
        return None

    def log(self, key: str, message: str) -> None:
        """A warning at most once per interval per ``key``."""
        held = self.throttle.allow(key)
        if held is not None:
            more = f" ({held} more since the last report)" if held else ""
            logger.warning("{}{}", message, more)


class _GuardedProtocol(asyncio.Protocol):
    """Forwards to aiohttp's protocol, once the connection is admitted."""

    def __init__(self, guard: ConnectionGuard, factory: Callable[[], asyncio.BaseProtocol]) -> None:
        self._guard = guard
        self._factory = factory
        self._inner: Any = None
        self._client = ""
        self._waiting = False  # for the first request's headers
        self._tail = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self._guard
        peer = transport.get_extra_info("peername")
        self._client = str(peer[0]) if isinstance(peer, tuple) and peer else "local"
        why = guard.refusal(self._client)
        if why is not None:
            guard.refused += 1
            guard.log("refused", f"refused a connection: {why}")
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(_REFUSAL)
            transport.close()
            return
        guard.total += 1
        guard.pending += 1
        guard.clients[self._client] += 1
        self._waiting = True
        self._timer = asyncio.get_running_loop().call_later(guard.header_timeout, self._too_slow, transport)
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def _too_slow(self, transport: asyncio.BaseTransport) -> None:
        if self._waiting:
            self._guard.timed_out += 1
            self._guard.log(
                "slow", f"closed a connection from {self._client}: no request within {self._guard.header_timeout:g} s"
            )
            if isinstance(transport, asyncio.WriteTransport):
                transport.abort()
            else:
                transport.close()

    def _headers_arrived(self) -> None:
        self._waiting = False
        self._tail = b""
        self._guard.pending -= 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return
        if self._waiting:
            seen = self._tail + data
            if b"\r\n\r\n" in seen:
                self._headers_arrived()
            else:
                self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is None:
            return
        guard = self._guard
        if self._waiting:
            self._headers_arrived()
        guard.total -= 1
        guard.clients[self._client] -= 1
        if guard.clients[self._client] <= 0:
            del guard.clients[self._client]
        self._inner.connection_lost(exc)


def quiet_accept_errors(loop: asyncio.AbstractEventLoop, throttle: Throttle) -> Callable[[], Awaitable[None]]:
    """Turn asyncio's accept() failure tracebacks into one throttled warning.

    When file descriptors run out, asyncio logs a full traceback for every
    failed accept(); under a connection flood that is megabytes a minute.
    Each failure also schedules a retry of the listener one second later;
    a retry that fires after the listener closed fails on its closed socket
    ("Invalid file descriptor: -1"), and is quieted the same way.

    Returns:
        An async function that puts the previous exception handler back,
        after the accept retries still pending have fired.
    """
    previous = loop.get_exception_handler()
    failures = [0]

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        message = str(context.get("message", ""))
        accept_failed = isinstance(exc, OSError) and ("accept" in message or "system resource" in message)
        stale_retry = isinstance(exc, ValueError) and "_start_serving" in repr(context.get("handle", ""))
        if accept_failed or stale_retry:
            failures[0] += 1
            held = throttle.allow("accept")
            if held is not None:
                logger.warning("accepting connections failed: {} ({} more since the last report)", exc, held)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    async def restore() -> None:
        if failures[0]:
            await asyncio.sleep(_ACCEPT_RETRY_DELAY + 0.2)  # asyncio's pending retries fire while quieted
        loop.set_exception_handler(previous)

    loop.set_exception_handler(handler)
    return restore
