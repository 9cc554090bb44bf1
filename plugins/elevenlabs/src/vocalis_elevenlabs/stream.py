"""A streamed utterance over the input-streaming socket, or over HTTP when it cannot be.

Text pushed goes to the server as it comes (:class:`TextLedger`); audio
comes back as it is made and is labelled with its sentences
(:class:`AudioTimeline`). Closing the stream (an interruption) closes the
socket, which is how the API stops a generation. While the LLM is silent
(a tool call), a keep-alive message every half of the server's inactivity
timeout keeps the socket open.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TYPE_CHECKING

from loguru import logger
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from vocalis.providers.base import ErrorKind
from vocalis.providers.redact import redact
from vocalis.providers.tts import SynthesizedAudio, TTSStream
from vocalis_elevenlabs.connection import WebSocketUnavailable, open_socket
from vocalis_elevenlabs.errors import close_error, code_error, secrets_of
from vocalis_elevenlabs.ledger import TextLedger
from vocalis_elevenlabs.protocol import END_OF_INPUT, KEEP_ALIVE, ProtocolError, parse_server_message
from vocalis_elevenlabs.timeline import AudioTimeline, CharTiming

if TYPE_CHECKING:
    from vocalis_elevenlabs.tts import ElevenLabsTTS


class ElevenLabsStream(TTSStream):
    """Streaming synthesis over the ElevenLabs WebSocket (HTTP as the fallback).

    Args:
        tts: The provider.
        max_pending: Frames made but not read yet at which reading from the
            server pauses (the socket's flow control then holds the server).

    Attributes:
        transport: ``"websocket"`` or ``"http"`` once the stream has chosen,
            None before.
    """

    def __init__(self, tts: ElevenLabsTTS, *, max_pending: int = 250) -> None:
        super().__init__(tts.label)
        self._tts = tts
        self._max_pending = max_pending
        settings = tts.settings
        self._ledger = TextLedger(whole_sentences=settings.auto_mode)
        frame_samples = tts.sample_rate * settings.frame_ms // 1000
        self._timeline = AudioTimeline(self._ledger, tts.sample_rate, frame_samples)
        self._outbox: deque[str] = deque([tts.init_message()])
        self._wake = asyncio.Event()
        self.transport: str | None = None
        self.start_task(self._run())

    @property
    def timings(self) -> list[CharTiming]:
        """When each character was spoken, from the server's alignment (WebSocket only).

        Times are seconds from the stream's first audio sample. The frames
        carry the same timings per word, from their sentence's first sample
        (:attr:`SynthesizedAudio.words <vocalis.providers.tts.SynthesizedAudio.words>`).
        """
        return self._timeline.timings

    def push_text(self, text: str) -> None:
        if self.input_ended:
            raise RuntimeError("push_text() after end_input()")
        if not isinstance(text, str):
            raise TypeError(f"push_text() expects a str, not {type(text).__name__}")
        self._enqueue(self._ledger.push(text))

    def flush(self) -> None:
        if not self.input_ended:
            self._enqueue(self._ledger.flush())

    def _on_end_input(self) -> None:
        self._enqueue(self._ledger.end())

    def _enqueue(self, messages: list[str]) -> None:
        if self.transport != "http":
            self._outbox.extend(messages)
        self._wake.set()

    async def _run(self) -> None:
        if self._tts.use_websocket():
            try:
                socket = await open_socket(self._tts, self._tts.websocket_url())
            except WebSocketUnavailable as exc:
                if self._tts.settings.transport == "websocket":
                    raise exc.error from exc
                self._tts.websocket_refused(exc.error)
            else:
                self.transport = "websocket"
                await self._speak_websocket(socket)
                return
        self.transport = "http"
        self._outbox.clear()
        await self._speak_http()

    # -- WebSocket -----------------------------------------------------------
    async def _speak_websocket(self, socket: ClientConnection) -> None:
        sender = asyncio.get_running_loop().create_task(self._send(socket))
        try:
            await self._receive(socket)
        finally:
            sender.cancel()
            await asyncio.wait([sender])
            # Closing is how the API stops a generation: an interrupted
            # reply's audio is not made (nor billed) any further.
            await socket.close()

    async def _send(self, socket: ClientConnection) -> None:
        keep_alive = self._tts.keep_alive_seconds
        with contextlib.suppress(ConnectionClosed):  # the receiver reports why
            while True:
                while self._outbox:
                    message = self._outbox.popleft()
                    await socket.send(message)
                    if message == END_OF_INPUT:
                        return  # the server speaks the rest, then closes
                self._wake.clear()
                try:
                    async with asyncio.timeout(keep_alive):
                        await self._wake.wait()
                except TimeoutError:
                    logger.debug("{}: keeping the socket alive", self.label)
                    await socket.send(KEEP_ALIVE)

    async def _receive(self, socket: ClientConnection) -> None:
        final = False
        try:
            async for raw in socket:
                if isinstance(raw, bytes):
                    # The API sends JSON text only; a binary frame is nothing this client knows.
                    logger.warning("{}: ignoring a binary frame of {} bytes", self.label, len(raw))
                    continue
                message = parse_server_message(raw)
                if message.ignored:
                    # Quoted from the server, which might echo the key: redacted.
                    logger.warning("{}: ignoring {}", self.label, redact(message.ignored, secrets_of(self._tts)))
                if message.error is not None:
                    raise code_error(self._tts, message.error, message.error_message, where="server error")
                # The alignment of the text as sent, else of the normalised text.
                alignment = message.alignment or message.normalized_alignment
                if message.audio or alignment is not None:
                    # Timings without audio belong to the audio that comes next.
                    await self._deliver(self._timeline.add(message.audio, alignment))
                if message.is_final:
                    final = True
                    break
        except ConnectionClosed as exc:
            received = exc.rcvd
            code = received.code if received is not None else None
            reason = received.reason if received is not None else ""
            raise close_error(self._tts, code, reason, None) from exc
        except ProtocolError as exc:
            raise self._tts.error(f"malformed server message: {exc}", kind=ErrorKind.PROTOCOL) from exc
        if not final and not self._ledger.ended:
            raise self._tts.error("the server closed the stream before the end of the text", kind=ErrorKind.CONNECTION)
        await self._deliver(self._timeline.finish())
        if self._timeline.late_words:
            logger.debug("{}: {} words were aligned after their audio", self.label, self._timeline.late_words)

    async def _deliver(self, items: list[SynthesizedAudio]) -> None:
        for item in items:
            await self.wait_for_room(self._max_pending)
            self.send(item)

    # -- HTTP ----------------------------------------------------------------
    async def _speak_http(self) -> None:
        """Sentence by sentence over HTTP, as :class:`~vocalis.providers.tts.SentenceTTSStream` does."""
        index = 0
        while True:
            segments = self._ledger.segments
            while index >= len(segments):
                if self._ledger.ended:
                    return
                self._wake.clear()
                await self._wake.wait()
            segment = segments[index]
            index += 1
            if not segment.speakable:
                continue
            label = segment.text
            last = None
            # aclosing: a stream closed while a frame waits for room must
            # close the response at once, not when the generator is collected.
            async with contextlib.aclosing(self._tts.speak_http(segment.text)) as frames:
                async for frame in frames:
                    if last is not None:
                        await self._deliver([SynthesizedAudio(last, label)])
                        label = ""
                    last = frame
            if last is not None:
                await self._deliver([SynthesizedAudio(last, label, segment_end=True)])
