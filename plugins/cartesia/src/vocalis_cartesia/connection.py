"""One WebSocket to ``/tts/websocket``, shared by a provider's streams.

Contexts multiplex on it: every message the server sends names its
``context_id``, and the connection hands it to whoever opened that context.
It is reused across turns (a new turn skips the TCP, TLS and WebSocket
handshakes) and replaced when it was closed, grew stale or belongs to
another event loop.

Nothing runs while no context is open: messages are read by a task that
starts with the first context and stops with the last, and no keepalive
task pings the server. The server closes a connection after five idle
minutes, so one idle for :data:`MAX_IDLE_SECONDS` is replaced rather than
trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.providers.base import ErrorKind, Provider, ProviderError
from vocalis.providers.redact import RedactingLogger
from vocalis_cartesia.errors import closed_error, handshake_error

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

MAX_IDLE_SECONDS = 240.0
"""A connection unused this long is replaced (Cartesia closes idle ones at 300 s)."""

_CLOSE_SECONDS = 2.0  # for the closing handshake and a last cancel: never block a shutdown on them


async def _until_loop_ends(close: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await close()


async def on_loop_shutdown(close: Callable[[], Awaitable[None]]) -> AsyncGenerator[None, None]:
    """Have ``close()`` run when the running event loop shuts down.

    ``asyncio.run`` (and test runners) finalize the async generators still
    suspended when their work is done: this returns one, started, whose
    ``finally`` calls ``close()``. A socket or session left open by code
    that never closes its provider is then closed through its own loop, not
    leaked when that loop is gone. Close it yourself with ``aclose()``,
    which runs ``close()`` now.
    """
    guard = _until_loop_ends(close)
    await anext(guard)
    return guard  # type: ignore[return-value]  # an async generator, started


@dataclass(slots=True)
class Route:
    """Where one context's messages go.

    Attributes:
        on_message: Called with each message (a decoded JSON object) of the
            context, in order, on the event loop.
        on_failure: Called once if the connection fails while the context is open.
    """

    on_message: Callable[[dict[str, Any]], None]
    on_failure: Callable[[ProviderError], None]


class CartesiaConnection:
    """A reusable WebSocket, its contexts' routes and the task reading it.

    Args:
        provider: The provider it serves (labels errors, knows the timeout).
        target: Gives the URL and headers to connect with (made on each
            connect, so a changed key is picked up).
        secrets: Gives the credentials to take out of errors and logs.
        timeout: Seconds the handshake may take.
    """

    def __init__(
        self,
        provider: Provider,
        target: Callable[[], tuple[str, dict[str, str]]],
        secrets: Callable[[], list[str]],
        timeout: float,
    ) -> None:
        self._provider = provider
        self._target = target
        self._secrets = secrets
        self._timeout = timeout
        self.loop = asyncio.get_running_loop()
        self._ws: ClientConnection | None = None
        self._lock = asyncio.Lock()
        self._routes: dict[str, Route] = {}
        self._reader: asyncio.Task[None] | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._last_used = 0.0
        self._closed = False
        self._guard: AsyncGenerator[None, None] | None = None
        self.connects = 0
        """How many times a WebSocket was opened (reuse keeps it at one)."""

    @property
    def is_open(self) -> bool:
        """Whether the WebSocket is open (it may still be stale)."""
        from websockets.protocol import State

        return self._ws is not None and self._ws.state is State.OPEN

    async def open(self) -> None:
        """Make sure an open, fresh WebSocket is ready.

        Raises:
            ProviderError: The handshake failed (refused: by status; no
                answer: ``TIMEOUT``; unreachable: ``CONNECTION``).
        """
        async with self._lock:
            if self._closed:
                raise self._provider.error("the provider is closed", recoverable=False, kind=ErrorKind.CONNECTION)
            stale = self.loop.time() - self._last_used > MAX_IDLE_SECONDS
            if self.is_open and not (stale and not self._routes):
                return
            # Contexts still routed to a socket that closed are lost with it.
            await self._reset(self._provider.error("connection closed", kind=ErrorKind.CONNECTION))
            self._ws = await self._connect()
            self.connects += 1
            self._last_used = self.loop.time()
            if self._guard is None:
                self._guard = await on_loop_shutdown(self._abort)

    async def _connect(self) -> ClientConnection:
        from websockets.asyncio.client import connect

        url, headers = self._target()
        secrets = self._secrets()
        try:
            return await connect(
                url,
                additional_headers=headers,
                open_timeout=self._timeout,
                close_timeout=_CLOSE_SECONDS,
                # No keepalive task between turns: a connection at rest costs nothing.
                ping_interval=None,
                max_size=16 * 2**20,
                max_queue=256,  # late chunks of a cancelled context wait here unread
                logger=RedactingLogger("websockets.client", secrets),
            )
        except Exception as exc:
            raise handshake_error(self._provider, exc, secrets, self._timeout) from exc

    def register(self, context_id: str, route: Route) -> None:
        """Send the messages of ``context_id`` to ``route`` from now on."""
        self._routes[context_id] = route
        if (self._reader is None or self._reader.done()) and self._ws is not None:
            self._reader = self.loop.create_task(self._read(self._ws, self._stopping))
            self._stopping = None

    async def release(self, context_id: str) -> None:
        """Stop routing ``context_id``; with no context left, stop reading."""
        self._routes.pop(context_id, None)
        self._last_used = self.loop.time()
        if not self._routes and self._reader is not None:
            # A context registered while this one is stopping starts a new
            # reader, which waits for this one first (only one may read).
            reader, self._reader = self._reader, None
            self._stopping = reader
            reader.cancel()
            await asyncio.wait([reader])

    async def send(self, message: dict[str, Any]) -> None:
        """Send one JSON message.

        Raises:
            ProviderError: The connection is closed (``CONNECTION`` or by its close code).
        """
        from websockets.exceptions import ConnectionClosed

        ws = self._ws
        if ws is None:
            raise self._provider.error("not connected", kind=ErrorKind.CONNECTION)
        try:
            await ws.send(json.dumps(message))
        except ConnectionClosed as exc:
            raise closed_error(self._provider, exc, started=False) from exc
        self._last_used = self.loop.time()

    async def _read(self, ws: ClientConnection, previous: asyncio.Task[None] | None) -> None:
        from websockets.exceptions import ConnectionClosed

        if previous is not None:
            await asyncio.wait([previous])
        failure: ProviderError
        try:
            while True:
                raw = await ws.recv()
                self._last_used = self.loop.time()
                try:
                    message = json.loads(raw)
                except ValueError:
                    message = None
                if not isinstance(message, dict):
                    failure = self._provider.error(
                        f"malformed message: not a JSON object ({len(raw)} {type(raw).__name__})",
                        kind=ErrorKind.PROTOCOL,
                    )
                    break
                self._route(message)
        except ConnectionClosed as exc:
            failure = closed_error(self._provider, exc, started=True)
        if ws is self._ws:  # else open() replaced it, and failed its contexts
            self._fail_all(failure)
            await self._drop()

    def _route(self, message: dict[str, Any]) -> None:
        context_id = message.get("context_id")
        route = self._routes.get(context_id) if isinstance(context_id, str) else None
        if route is not None:
            route.on_message(message)
        elif message.get("type") == "error" and not context_id:
            # An error about the connection itself: every context is affected.
            from vocalis_cartesia.errors import message_error

            self._fail_all(message_error(self._provider, message))
        else:
            logger.debug(
                "{}: dropped a {} message of context {}", self._provider.label, message.get("type"), context_id
            )

    def _fail_all(self, failure: ProviderError) -> None:
        routes, self._routes = list(self._routes.values()), {}
        for route in routes:
            route.on_failure(failure)

    async def _drop(self, *, graceful: bool = True) -> None:
        """Close the current WebSocket (if any) without waiting long."""
        ws, self._ws = self._ws, None
        if ws is None:
            return
        with contextlib.suppress(Exception):
            if graceful:
                await asyncio.wait_for(ws.close(), _CLOSE_SECONDS)
            else:
                ws.transport.abort()

    async def _reset(self, failure: ProviderError, *, graceful: bool = True) -> None:
        """Stop reading, fail the routed contexts and close the WebSocket."""
        reader, stopping = self._reader, self._stopping
        self._reader = self._stopping = None
        for task in (reader, stopping):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                await asyncio.wait([task])
        self._fail_all(failure)
        await self._drop(graceful=graceful)

    async def _shut(self, *, graceful: bool) -> None:
        self._closed = True
        failure = self._provider.error("the provider was closed", recoverable=False, kind=ErrorKind.CONNECTION)
        await self._reset(failure, graceful=graceful)

    async def _abort(self) -> None:
        # At loop shutdown no closing handshake: it would start new async
        # generators (websockets' send context) after their finalization.
        await self._shut(graceful=False)

    async def aclose(self) -> None:
        """Fail the open contexts, stop reading and close the WebSocket. Idempotent."""
        guard, self._guard = self._guard, None
        await self._shut(graceful=True)
        if guard is not None:
            await guard.aclose()  # nothing left to close: only ends the guard

    def abandon(self) -> None:
        """Forget a connection whose event loop is gone.

        If that loop was shut down by ``asyncio.run``, the connection was
        closed then (see :func:`on_loop_shutdown`); else its socket is aborted.
        """
        self._closed = True
        self._routes.clear()
        self._reader = self._stopping = self._guard = None
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.transport.abort()
