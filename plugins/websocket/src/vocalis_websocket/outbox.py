"""Ordered sending on one WebSocket, and JSON-safe event payloads.

The session hands a transport agent audio and events from plain (non-async)
callbacks, faster than real time. An :class:`Outbox` queues those messages
and one writer task sends them in order, so a slow client only ever delays
its own socket; audio still queued can be dropped at once on barge-in.

The queue is bounded. Audio a client cannot take as fast as it is made
(a slow link, a stalled reader) is shed oldest first past
``max_audio_bytes``: the session's playout clock has moved on, so that
audio is stale anyway. Other messages (events, control) are never dropped;
a client that lets ``max_messages`` of them pile up is not reading at all,
and its socket is closed (1008, "client too slow").
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from collections import deque
from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from aiohttp import web

_MAX_DEPTH = 16
DEFAULT_MAX_AUDIO_BYTES = 4 * 1024 * 1024
"""Queued agent audio per connection (about 2 minutes of 16 kHz PCM)."""
DEFAULT_MAX_MESSAGES = 2048
"""Queued non-audio messages per connection before the client counts as gone."""
CLOSE_TOO_SLOW = 1008  # policy violation: the client does not read what it is sent


def jsonable(value: Any, _depth: int = 0) -> Any:
    """``value`` made of JSON types only.

    Enums become their values, dataclasses and pydantic models dicts,
    tuples and sets lists, non-finite floats None, anything else its
    ``str()``; very deep (or cyclic) structures are cut at a fixed depth.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Enum):
        return jsonable(value.value, _depth + 1)
    if _depth >= _MAX_DEPTH:
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, _depth + 1) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return jsonable(dump(mode="json"), _depth + 1)
    return str(value)


def dumps(message: Mapping[str, Any]) -> str:
    """Compact JSON text of a message built from :func:`jsonable` values."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


class Outbox:
    """A send queue with one writer task for a server-side WebSocket.

    Args:
        ws: The prepared socket.
        name: For the task name and logs.
        max_audio_bytes: Queued audio past which the oldest audio is dropped
            (down to three quarters of it, so shedding is rare).
        max_messages: Queued non-audio messages past which the client is
            taken as gone and the socket closed.

    Attributes:
        sent: Messages sent.
        shed: Audio messages dropped because the client fell behind.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        name: str = "websocket",
        *,
        max_audio_bytes: int = DEFAULT_MAX_AUDIO_BYTES,
        max_messages: int = DEFAULT_MAX_MESSAGES,
    ) -> None:
        if max_audio_bytes < 1 or max_messages < 1:
            raise ValueError("max_audio_bytes and max_messages must be positive")
        self._ws = ws
        self._name = name
        self.max_audio_bytes = max_audio_bytes
        self.max_messages = max_messages
        self._items: deque[tuple[str | bytes, bool]] = deque()  # (message, droppable audio)
        self._audio_bytes = 0
        self._others = 0  # non-audio messages queued
        self._closer: asyncio.Task[bool] | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._broken = False
        self.sent = 0
        self.shed = 0

    @property
    def pending(self) -> int:
        """Messages queued and not yet sent."""
        return len(self._items)

    @property
    def pending_audio_bytes(self) -> int:
        """Bytes of audio messages queued and not yet sent."""
        return self._audio_bytes

    def start(self) -> None:
        """Start the writer task (once)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self._name}-writer")

    def put(self, message: str | bytes, *, audio: bool = False) -> None:
        """Queue a text or binary message; ``audio`` ones can be dropped by :meth:`drop_audio`."""
        if self._broken:
            return
        if audio:
            self._audio_bytes += len(message)
        elif self._others >= self.max_messages:
            self._give_up()
            return
        else:
            self._others += 1
        self._items.append((message, audio))
        self._idle.clear()
        self._wake.set()
        if self._audio_bytes > self.max_audio_bytes:
            self._shed_audio()

    def drop_audio(self) -> int:
        """Forget queued audio (barge-in); returns how many messages were dropped."""
        before = len(self._items)
        self._items = deque(item for item in self._items if not item[1])
        self._audio_bytes = 0
        if not self._items:
            self._idle.set()
        return before - len(self._items)

    def _shed_audio(self) -> None:
        """The client falls behind: drop the oldest queued audio."""
        target = self.max_audio_bytes * 3 // 4
        kept: deque[tuple[str | bytes, bool]] = deque()
        dropped = 0
        for message, audio in self._items:
            if audio and self._audio_bytes > target:
                self._audio_bytes -= len(message)
                dropped += 1
                continue
            kept.append((message, audio))
        self._items = kept
        self.shed += dropped
        logger.warning(
            "{}: the client takes audio slower than it is made; dropped {} queued audio messages",
            self._name,
            dropped,
        )

    def _give_up(self) -> None:
        """Messages pile up unsent: the client does not read; close its socket."""
        logger.warning(
            "{}: {} messages wait to be sent; the client is not reading, closing the connection",
            self._name,
            self._others,
        )
        self._broken = True
        self._clear()
        if self._closer is None and not self._ws.closed:
            self._closer = asyncio.get_running_loop().create_task(
                self._ws.close(code=CLOSE_TOO_SLOW, message=b"client too slow")
            )

    def _clear(self) -> None:
        self._items.clear()
        self._audio_bytes = self._others = 0
        self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until everything queued was sent."""
        if self._task is None or self._task.done():
            return not self._items
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def aclose(self) -> None:
        """Stop the writer; what is still queued is dropped. Idempotent."""
        self._broken = True
        self._clear()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._closer is not None:
            await asyncio.gather(self._closer, return_exceptions=True)

    async def _run(self) -> None:
        ws = self._ws
        while True:
            while not self._items:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
            message, audio = self._items.popleft()
            if audio:
                self._audio_bytes -= len(message)
            else:
                self._others -= 1
            try:
                if isinstance(message, str):
                    await ws.send_str(message)
                else:
                    await ws.send_bytes(message)
            except (ConnectionError, RuntimeError) as exc:
                # The peer went away: its reader will notice and end the session.
                logger.debug("{}: sending stopped ({})", self._name, exc or type(exc).__name__)
                self._broken = True
                self._clear()
                return
            self.sent += 1
