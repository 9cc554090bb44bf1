"""One Realtime API WebSocket as a :class:`~vocalis.providers.realtime.RealtimeSession`.

Two tasks share the socket: a writer sends client events in the order they
were posted (so audio appended before ``response.create`` is heard first), a
reader hands server events to :class:`~vocalis_openai.realtime_events.ServerEventMapper`.
Either one ending takes the other down; the socket is closed when the
session ends, whichever way it ends.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.audio import AudioFrame, AudioResampler
from vocalis.providers.base import ProviderError
from vocalis.providers.realtime import RealtimeSession
from vocalis_openai.realtime_events import ServerEventMapper
from vocalis_openai.realtime_items import message_item, tool_output_item

if TYPE_CHECKING:
    from openai.resources.realtime.realtime import AsyncRealtimeConnection
    from websockets.exceptions import ConnectionClosed

    from vocalis_openai.realtime import OpenAIRealtime

_CLOSE = None
# Client events waiting for the socket before new audio is dropped (about
# 10 s of 20 ms frames): a stalled connection must not grow memory forever.
_MAX_BACKLOG = 500


class OpenAIRealtimeSession(RealtimeSession):
    """A live Realtime API conversation; built by :meth:`OpenAIRealtime.connect`.

    Server ``error`` events are logged and kept in :attr:`errors`; they do not
    end the session. The socket closing without :meth:`aclose` does: the
    stream then fails with a :class:`ProviderError` naming the provider.
    """

    def __init__(self, model: OpenAIRealtime, connection: AsyncRealtimeConnection, *, manual_turns: bool) -> None:
        super().__init__(model.label)
        self._model = model
        self._conn = connection
        # Audio appends skip the SDK's param transform when it offers a raw send.
        self._send_raw: Callable[[str], Awaitable[None]] | None = getattr(connection, "send_raw", None)
        self._manual_turns = manual_turns
        self._events = ServerEventMapper(model, self.send)
        self._outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._resampler = AudioResampler(model.sample_rate)
        self._ids = itertools.count(1)
        self._closing = False
        self._backlog_warned = False
        self.start_task(self._run())

    @property
    def errors(self) -> list[ProviderError]:
        """The server's ``error`` events so far, as labelled errors."""
        return self._events.errors

    # -- client events ---------------------------------------------------------
    def send_client_event(self, event: dict[str, Any]) -> str:
        """Queue a raw client event (in order with audio); returns its ``event_id``.

        Raises:
            ProviderError: The session has ended.
        """
        if self._closed or self._finished or self._closing:
            raise self._model.error("the realtime session has ended", recoverable=False)
        event_id = event.setdefault("event_id", f"vocalis_{next(self._ids)}")
        self._outbox.put_nowait(event)
        return str(event_id)

    def push_audio(self, frame: AudioFrame) -> None:
        if self._closed or self._finished or self._closing:
            return
        converted = self._resampler.push(frame)
        if converted is None or not converted.data:
            return
        if self._outbox.qsize() >= _MAX_BACKLOG:
            if not self._backlog_warned:
                self._backlog_warned = True
                logger.warning("{}: the connection is not keeping up; dropping audio", self.label)
            return
        self._backlog_warned = False
        audio = base64.b64encode(converted.data).decode()
        # No event_id: at 50 appends a second it would only add bytes.
        self._outbox.put_nowait({"type": "input_audio_buffer.append", "audio": audio})
        self._events.uncommitted = True

    async def create_response(self, instructions: str | None = None) -> None:
        if self._manual_turns and self._events.uncommitted:
            # Without server turn detection nobody else commits the user's audio.
            self.send_client_event({"type": "input_audio_buffer.commit"})
            self._events.uncommitted = False
        event: dict[str, Any] = {"type": "response.create"}
        if instructions:
            event["response"] = {"instructions": instructions}
        self._events.pending_creates.append(self.send_client_event(event))

    async def send_text(self, text: str) -> None:
        item = message_item("user", text)
        self.send_client_event({"type": "conversation.item.create", "item": item})

    async def cancel_response(self, *, played_seconds: float | None = None) -> None:
        active = self._events.active_response
        if active is not None:
            self.send_client_event({"type": "response.cancel", "response_id": active})
        if played_seconds is None:
            return
        item = self._events.take_audio_item()
        if item is None:
            return
        # The server rejects an end past the audio it sent, so clamp to that.
        end_ms = max(0, min(round(played_seconds * 1000), item.received_ms))
        self.send_client_event(
            {
                "type": "conversation.item.truncate",
                "item_id": item.item_id,
                "content_index": item.content_index,
                "audio_end_ms": end_ms,
            }
        )

    async def send_tool_output(self, call_id: str, output: str, *, is_error: bool = False) -> None:
        item = tool_output_item(call_id, output, is_error=is_error)
        self.send_client_event({"type": "conversation.item.create", "item": item})

    async def update_instructions(self, instructions: str) -> None:
        session = {"type": "realtime", "instructions": instructions}
        self.send_client_event({"type": "session.update", "session": session})

    async def wait_ready(self) -> None:
        """Wait for ``session.created``; raises what ended the session first."""
        await self._events.ready

    def _on_end_input(self) -> None:
        # Flush what is queued, then close: the stream ends without an error.
        if not self._closing:
            self._closing = True
            self._outbox.put_nowait(_CLOSE)

    async def aclose(self) -> None:
        self._closing = True
        await super().aclose()

    # -- the socket --------------------------------------------------------------
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        reader = loop.create_task(self._read())
        writer = loop.create_task(self._write())
        ready = self._events.ready
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if reader not in done and writer.exception() is None:
                await reader  # the socket closed under the writer: the reader says why
            for task in (reader, writer):
                if task.done() and (exc := task.exception()) is not None:
                    raise exc
        except BaseException as exc:
            if not ready.done():
                failure = (
                    exc
                    if isinstance(exc, ProviderError)
                    else self._model.error("the session ended before it was created")
                )
                ready.set_exception(failure)
            raise
        finally:
            reader.cancel()
            writer.cancel()
            await asyncio.wait({reader, writer})
            try:
                await self._conn.close()
            except Exception as exc:  # a dead socket may fail to close; it is gone either way
                logger.debug("{}: closing the socket: {}", self.label, exc)
        if not ready.done():
            ready.set_exception(self._model.error("the session ended before it was created"))

    async def _write(self) -> None:
        from websockets.exceptions import ConnectionClosed

        while True:
            event = await self._outbox.get()
            if event is _CLOSE:
                self._closing = True
                await self._conn.close()
                return
            try:
                if event["type"] == "input_audio_buffer.append" and self._send_raw is not None:
                    await self._send_raw(json.dumps(event))
                else:
                    await self._conn.send(event)  # type: ignore[arg-type]
            except ConnectionClosed:
                return

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        while True:
            try:
                data = await self._conn.recv_bytes()
            except ConnectionClosed as exc:
                if self._closing:
                    return
                raise self._closed_error(exc) from None
            try:
                event = self._conn.parse_event(data)
            except (ValueError, TypeError) as exc:
                # The parser's message may quote the message, which may quote the key.
                detail = self._events.redact(str(exc))
                logger.warning("{}: ignoring a server message that is not JSON: {}", self.label, detail)
                continue
            self._events.handle(event)

    def _closed_error(self, exc: ConnectionClosed) -> ProviderError:
        frame = exc.rcvd
        if frame is None:
            how = "no close frame"
        else:
            how = f"code {frame.code}" + (f": {frame.reason}" if frame.reason else "")
        message = f"connection closed unexpectedly ({how})"
        recoverable = True
        if self._events.last_error is not None:
            text, recoverable = self._events.last_error
            message += f"; last server error: {text}"
        return self._model.error(message, recoverable=recoverable)
