"""One turn of speech over the shared WebSocket, as a Cartesia context.

Text is cut into sentences as it comes. Each sentence goes to the turn's
context as a continuation (``continue: true``), so the voice keeps its
prosody across the turn, followed by a manual flush that maps its audio
back to it, and its word timestamps too, which ride on its frames (see
:mod:`vocalis_cartesia.segments`); the end of the input is
an empty transcript with ``continue: false``. Closing the stream before the
end (an interruption) sends ``{"context_id", "cancel": true}``, so the
server stops generating what will never be heard.

Cartesia lets a context expire soon after its last audio when no input
follows. When the reply pauses (a tool call) for longer than
:data:`CONTEXT_REUSE_SECONDS` after its audio was complete, the next
sentence opens a new context instead of feeding an expired one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import uuid
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.tts import SynthesizedAudio, TTSStream
from vocalis.text import SentenceChunker, speakable
from vocalis_cartesia.connection import CartesiaConnection, Route
from vocalis_cartesia.errors import message_error
from vocalis_cartesia.request import ContextMessages
from vocalis_cartesia.segments import SegmentAssembler, WordTimestamp

if TYPE_CHECKING:
    from vocalis_cartesia.tts import CartesiaTTS

CONTEXT_REUSE_SECONDS = 0.5
"""After a context's audio is complete, how long more text may still go to it."""

_CANCEL_SECONDS = 1.0  # a cancel that cannot be sent this fast is not worth waiting for


@dataclass(slots=True)
class _Context:
    messages: ContextMessages
    inputs: int = 0  # sentences sent
    flushes_done: int = 0
    acked_at: float | None = None  # loop time of the last flush_done
    closed: bool = False  # the empty ``continue: false`` input was sent
    done: bool = False  # the server said done (or failed it): nothing more will come
    finished: bool = False  # the reader handled its last message (or left it)
    routed: bool = True

    @property
    def id(self) -> str:
        return self.messages.context_id

    def reusable(self, now: float) -> bool:
        if self.closed or self.done:
            return False
        generating = self.flushes_done < self.inputs
        return generating or self.acked_at is None or now - self.acked_at < CONTEXT_REUSE_SECONDS


class _AllSent:
    """The sender's last item: the input ended and every context was closed."""


class CartesiaTTSStream(TTSStream):
    """Streaming synthesis of one turn over a Cartesia WebSocket context.

    Created by :meth:`CartesiaTTS.stream`.

    Args:
        tts: The provider (its connection, settings and errors).
        chunker: How text is cut into sentences.
        max_pending: Frames made but not read yet at which reading from the
            server pauses until the reader catches up.

    Attributes:
        context_ids: The contexts opened, in order (one per turn, unless a
            long pause made a new one necessary).
    """

    def __init__(self, tts: CartesiaTTS, *, chunker: SentenceChunker | None = None, max_pending: int = 250) -> None:
        super().__init__(tts.label)
        self._tts = tts
        self._chunker = chunker or SentenceChunker()
        self._max_pending = max_pending
        self._pending: deque[str] = deque()
        self._wake = asyncio.Event()
        self._inbox: asyncio.Queue[tuple[_Context, dict[str, Any]] | ProviderError | _AllSent] = asyncio.Queue()
        self._assembler = SegmentAssembler(tts.sample_rate, tts.settings.frame_ms)
        self._contexts: list[_Context] = []
        self.context_ids: list[str] = []
        self.start_task(self._run())

    @property
    def word_timestamps(self) -> list[WordTimestamp]:
        """Word timings the server sent so far (with ``add_timestamps``), on the
        stream's audio timeline; each frame carries its sentence's own as
        :attr:`SynthesizedAudio.words <vocalis.providers.tts.SynthesizedAudio.words>`."""
        return list(self._assembler.timestamps)

    # -- input -------------------------------------------------------------
    def push_text(self, text: str) -> None:
        if self.input_ended:
            raise RuntimeError("push_text() after end_input()")
        self._pending.extend(self._chunker.push(text))
        if self._pending:
            self._wake.set()

    def flush(self) -> None:
        self._pending.extend(self._chunker.flush())
        self._wake.set()

    def _on_end_input(self) -> None:
        self.flush()

    # -- the worker ----------------------------------------------------------
    async def _run(self) -> None:
        connection = self._tts.connection()
        try:
            await connection.open()  # now: the handshake overlaps the wait for text
            sender = asyncio.get_running_loop().create_task(self._send_all(connection))
            try:
                await self._receive_all()
            finally:
                sender.cancel()
                await asyncio.wait([sender])
        finally:
            await self._wind_up(connection)

    async def _next_sentence(self) -> str | None:
        while True:
            while self._pending:
                sentence = self._pending.popleft()
                if speakable(sentence):
                    return sentence
            if self.input_ended:
                return None
            self._wake.clear()
            await self._wake.wait()

    async def _send_all(self, connection: CartesiaConnection) -> None:
        try:
            context: _Context | None = None
            while (sentence := await self._next_sentence()) is not None:
                if context is None or not context.reusable(asyncio.get_running_loop().time()):
                    if context is not None:
                        await self._retire(connection, context)
                    context = await self._open_context(connection)
                # Transcripts are joined verbatim: a space keeps sentences apart.
                text = sentence if not context.inputs else " " + sentence
                context.inputs += 1  # before sending: its audio is owed from now on
                self._assembler.add_sentence(sentence, context.id, context.inputs)
                await connection.send(context.messages.text(text))
                await connection.send(context.messages.flush())
            if context is not None and not context.done:
                await connection.send(context.messages.close())
                context.closed = True
            self._inbox.put_nowait(_AllSent())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._inbox.put_nowait(
                exc if isinstance(exc, ProviderError) else self._tts.error(f"sending failed: {exc!r}")
            )

    async def _open_context(self, connection: CartesiaConnection) -> _Context:
        # A connection that closed while the reply paused is replaced here.
        await connection.open()
        messages = self._tts.context_messages(str(uuid.uuid4()))
        context = _Context(messages)
        self._contexts.append(context)
        self.context_ids.append(context.id)
        connection.register(context.id, Route(functools.partial(self._on_message, context), self._on_failure))
        return context

    async def _retire(self, connection: CartesiaConnection, context: _Context) -> None:
        """Leave a context whose audio is complete (it may have expired already)."""
        ended = context.done  # by the server, or with a connection that closed
        context.done = context.finished = True
        context.routed = False
        await connection.release(context.id)
        if not (context.closed or ended):
            # Ends it if it is still open; if it just expired, the server's
            # answer goes to no one.
            context.closed = True
            await connection.send(context.messages.close())

    def _on_message(self, context: _Context, message: dict[str, Any]) -> None:
        # Book-keeping the sender needs happens on arrival, audio on reading.
        kind = message_kind(message)
        if kind == "flush_done":
            context.flushes_done += 1
            context.acked_at = asyncio.get_running_loop().time()
        elif is_last(kind, message):
            context.done = True
        self._inbox.put_nowait((context, message))

    def _on_failure(self, failure: ProviderError) -> None:
        live = [context for context in self._contexts if not context.done]
        if all(context.flushes_done >= context.inputs for context in live):
            # Every sentence sent so far was heard back whole (the reply is
            # pausing): nothing is lost, and the next sentence reconnects.
            for context in live:
                context.done = True
                self._inbox.put_nowait((context, {"type": "done", "context_id": context.id}))
            return
        self._inbox.put_nowait(failure)

    async def _receive_all(self) -> None:
        all_sent = False
        # Messages are read in their order of arrival: a context is finished
        # once its ``done`` is read, not when it arrived behind unread audio.
        while not (all_sent and all(context.finished for context in self._contexts)):
            item = await self._inbox.get()
            if isinstance(item, ProviderError):
                raise item
            if isinstance(item, _AllSent):
                all_sent = True
                continue
            context, message = item
            for audio in self._handle(context, message):
                await self.wait_for_room(self._max_pending)
                self.send(audio)
        for audio in self._assembler.finish():
            self.send(audio)
        if self._assembler.late_words:
            logger.debug("{}: {} words were timed after their audio", self.label, self._assembler.late_words)

    def _handle(self, context: _Context, message: dict[str, Any]) -> list[SynthesizedAudio]:
        kind = message_kind(message)
        flush_id = message.get("flush_id")
        if kind == "error":
            context.finished = True
            raise message_error(self._tts, message)
        stamps = message.get("word_timestamps")  # on their own message, or on a chunk
        if isinstance(stamps, dict):
            words, starts, ends = stamps.get("words"), stamps.get("start"), stamps.get("end")
            self._assembler.add_timestamps(context.id, flush_id, words, starts, ends)
        out: list[SynthesizedAudio] = []
        if kind == "chunk":
            out = self._assembler.audio(context.id, flush_id, self._decode(message.get("data")))
        elif kind == "flush_done":
            out = self._assembler.end_sentence(context.id, flush_id)
        elif kind not in ("done", "timestamps", "phoneme_timestamps"):
            logger.debug("{}: ignored a {!r} message", self.label, kind)  # a type newer than this client
        if is_last(kind, message):
            context.finished = True
            out += self._assembler.end_context(context.id)
        return out

    def _decode(self, data: object) -> bytes:
        if data is None or data == "":
            return b""
        if not isinstance(data, str):
            raise self._tts.error(f"malformed chunk: data is {type(data).__name__}", kind=ErrorKind.PROTOCOL)
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self._tts.error("malformed chunk: data is not base64", kind=ErrorKind.PROTOCOL) from exc

    async def _wind_up(self, connection: CartesiaConnection) -> None:
        """Cancel what is still generating and stop routing this stream's contexts."""
        for context in self._contexts:
            if not context.routed:
                continue
            context.routed = False
            if not context.done and connection.is_open:
                # Interrupted (or failed elsewhere): the server stops generating.
                with contextlib.suppress(ProviderError, TimeoutError):
                    await asyncio.wait_for(connection.send(context.messages.cancel()), _CANCEL_SECONDS)
                context.done = True
            await connection.release(context.id)


def message_kind(message: dict[str, Any]) -> str:
    """A message's ``type``; for a message without one (older API versions),
    what its fields show it to be."""
    kind = message.get("type")
    if isinstance(kind, str) and kind:
        return kind
    if "error" in message:
        return "error"
    if "data" in message:
        return "chunk"
    if message.get("flush_done") is True:
        return "flush_done"
    if "word_timestamps" in message:
        return "timestamps"
    return "done" if message.get("done") is True else "unknown"


def is_last(kind: str, message: dict[str, Any]) -> bool:
    """Whether nothing more will come for the message's context."""
    return kind in ("done", "error") or (kind != "flush_done" and message.get("done") is True)
