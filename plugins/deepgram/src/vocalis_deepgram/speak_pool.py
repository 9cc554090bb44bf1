"""The Speak WebSocket kept open between replies.

Opening a WebSocket costs a TCP, TLS and HTTP-upgrade round trip each, which
would add to every reply's time to first audio. A reply that ends cleanly
(every flush answered by ``Flushed``) hands its connection back; the next
reply on the same event loop takes it if it is still open and has not sat
idle for long. An interrupted reply's connection is cleared and closed, never
reused. A reused connection that turns out dead before any audio came is
replaced by a new one (:class:`~vocalis_deepgram.tts_stream.DeepgramTTSStream`
retries once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vocalis_deepgram.errors import exception_error

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from vocalis_deepgram.tts import DeepgramTTS

IDLE_SECONDS = 20.0
"""A connection idle longer than this is closed rather than reused (the
server may have dropped it meanwhile)."""


@dataclass
class SpeakSocket:
    """One Speak WebSocket and the flushes it was sent (Deepgram limits them per minute).

    Attributes:
        ws: The connection.
        flushes: Loop times of the flushes sent on it, oldest first.
        reused: Whether an earlier reply used it.
    """

    ws: ClientConnection
    flushes: deque[float] = field(default_factory=deque)
    reused: bool = False


class SpeakConnections:
    """At most one idle Speak WebSocket per provider, for the loop that opened it.

    Args:
        tts: The provider (URL, key, settings).
    """

    def __init__(self, tts: DeepgramTTS) -> None:
        self._tts = tts
        self._idle: SpeakSocket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._since = 0.0

    async def take(self) -> SpeakSocket:
        """The idle connection if it is still good, else a new one.

        Raises:
            ProviderError: Connecting failed (mapped by HTTP status or cause).
        """
        loop = asyncio.get_running_loop()
        idle, self._idle = self._idle, None
        if idle is not None:
            fresh = loop.time() - self._since <= IDLE_SECONDS
            if self._loop is loop and fresh and _is_open(idle.ws):
                idle.reused = True
                return idle
            if self._loop is loop:
                await _close(idle.ws)
        return SpeakSocket(await self.connect())

    async def give_back(self, socket: SpeakSocket) -> None:
        """Keep ``socket`` for the next reply (or close it when one is kept already)."""
        loop = asyncio.get_running_loop()
        if self._idle is None and _is_open(socket.ws):
            self._idle, self._loop, self._since = socket, loop, loop.time()
            return
        await _close(socket.ws)

    async def connect(self) -> ClientConnection:
        """Open a new Speak WebSocket."""
        from websockets.asyncio.client import connect

        tts = self._tts
        url = tts.ws_url("/v1/speak", tts.speak_params(rest=False))
        headers = tts.auth_headers()  # raises when the key is missing
        try:
            return await connect(
                url,
                additional_headers=headers,
                open_timeout=tts.settings.timeout,
                close_timeout=min(tts.settings.timeout, 2.0),
                # No pings: an idle pooled connection then runs no task; a dead
                # one is found when it is taken, and replaced.
                ping_interval=None,
                compression=None,
                max_size=4 * 1024 * 1024,
                logger=tts.ws_logger(),  # its DEBUG log shows the Authorization header
            )
        except Exception as exc:
            raise exception_error(tts, exc, started=False, what="connection") from exc

    async def warm(self) -> None:
        """Open a connection now, for the first reply."""
        if self._idle is None:
            await self.give_back(SpeakSocket(await self.connect()))

    async def aclose(self) -> None:
        """Close the idle connection, if it belongs to this loop. Idempotent."""
        idle, self._idle = self._idle, None
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if idle is not None and self._loop is running:
            await _close(idle.ws)


def _is_open(ws: ClientConnection) -> bool:
    from websockets.protocol import State

    return ws.state is State.OPEN


async def _close(ws: ClientConnection) -> None:
    with contextlib.suppress(Exception):  # a dead socket may fail to close; it is gone either way
        await ws.close()
