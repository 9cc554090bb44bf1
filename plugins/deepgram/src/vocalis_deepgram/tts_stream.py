"""One reply spoken over Deepgram's Speak WebSocket (``/v1/speak``).

Text is cut into sentences as it arrives; each goes out as a ``Speak``
message followed by a ``Flush``, so Deepgram starts speaking it at once, and
the next sentence is sent while the first one's audio still streams in.
Audio comes back as binary frames of raw linear16; ``Flushed`` says a
sentence's audio is complete, which marks the end of its segment. Deepgram
takes at most 20 flushes a minute: past that budget, the sentences that
waited are joined into one segment.

A reply that completes hands its connection back for the next one
(:mod:`vocalis_deepgram.speak_pool`). Closing the stream early (an
interruption) sends ``Clear``, which drops the text and audio Deepgram still
holds, and closes the socket. A kept connection found dead before any reply
came is replaced once, the reply resent; otherwise a dropped connection ends
the reply with a :class:`ProviderError` (it is not resent: part of it was
heard).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.audio import AudioFrame
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.tts import SynthesizedAudio, TTSStream
from vocalis.text import SentenceChunker, speakable, split_text
from vocalis_deepgram.client import describe
from vocalis_deepgram.errors import close_error
from vocalis_deepgram.speak_pool import SpeakSocket
from vocalis_deepgram.tts import MAX_INPUT_CHARS

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from vocalis_deepgram.tts import DeepgramTTS

FLUSH = json.dumps({"type": "Flush"})
CLEAR = json.dumps({"type": "Clear"})
_WINDOW = 60.0  # seconds over which Deepgram counts flushes
_POLL = 0.25  # seconds between the reader's checks for the end of the reply


class DeepgramTTSStream(TTSStream):
    """A reply over the Speak WebSocket; built by :meth:`DeepgramTTS.stream`.

    Args:
        tts: The provider (settings, URL, key).
        max_pending: Frames made but not read yet at which reading from the
            socket pauses until the reader catches up.
    """

    def __init__(self, tts: DeepgramTTS, *, max_pending: int = 250) -> None:
        super().__init__(tts.label)
        self._tts = tts
        self._max_pending = max_pending
        self._chunker = SentenceChunker()
        self._sentences: deque[str] = deque()  # cut, not sent yet
        self._segments: deque[str] = deque()  # sent and flushed, audio not complete yet
        self._flushes: deque[float] = deque()  # loop times of the flushes in the window
        self._wake = asyncio.Event()
        self._writer_done = False
        self._heard = False  # any message came back (the connection works)
        self._activity = 0.0
        self._audio = bytearray()
        self._held: AudioFrame | None = None  # the newest frame, kept to mark a segment's end
        self._first = True  # the next frame is its segment's first
        self.start_task(self._run())

    # -- input ----------------------------------------------------------------------
    def push_text(self, text: str) -> None:
        if self.input_ended:
            raise RuntimeError("push_text() after end_input()")
        self._sentences.extend(self._chunker.push(text))
        if self._sentences:
            self._wake.set()

    def flush(self) -> None:
        self._sentences.extend(self._chunker.flush())
        self._wake.set()

    def _on_end_input(self) -> None:
        self.flush()

    # -- the connection -------------------------------------------------------------------
    async def _run(self) -> None:
        socket = await self._tts.speak_connections.take()
        while True:
            try:
                await self._converse(socket)
                return
            except ProviderError:
                if not socket.reused or self._heard:
                    raise
                # The kept connection had died while idle: say it all again on a new one.
                logger.debug("{}: the kept connection was gone; opening a new one", self.label)
                self._sentences.extendleft(reversed(self._segments))
                self._segments.clear()
                socket = SpeakSocket(await self._tts.speak_connections.connect())

    async def _converse(self, socket: SpeakSocket) -> None:
        ws = socket.ws
        self._flushes = socket.flushes
        self._writer_done = False
        loop = asyncio.get_running_loop()
        self._activity = loop.time()
        writer = loop.create_task(self._write(ws))
        reader = loop.create_task(self._read(ws))
        complete = False
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if reader not in done and writer.exception() is None:
                await reader
            for task in (reader, writer):
                if task.done() and (failure := task.exception()) is not None:
                    raise failure
            complete = True
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.wait({reader, writer})
            if complete:
                await self._tts.speak_connections.give_back(socket)
            else:
                with contextlib.suppress(Exception):
                    # Interrupted or failed: drop what Deepgram still holds, then hang up.
                    await asyncio.wait_for(ws.send(CLEAR), 0.5)
                with contextlib.suppress(Exception):  # a dead socket may fail to close
                    await ws.close()

    async def _write(self, ws: ClientConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        loop = asyncio.get_running_loop()
        try:
            while True:
                while not self._sentences:
                    if self.input_ended:
                        self._writer_done = True
                        return
                    self._wake.clear()
                    await self._wake.wait()
                if not self._budget_left(loop.time()):
                    await asyncio.sleep(self._flushes[0] + _WINDOW - loop.time())
                    # The sentences that waited are spoken with one flush.
                    text = " ".join(self._sentences)
                    self._sentences.clear()
                else:
                    text = self._sentences.popleft()
                if not speakable(text):
                    continue
                # Owed from here on: a connection lost while sending it still owes it.
                self._segments.append(text)
                for piece in split_text(text, MAX_INPUT_CHARS):
                    await ws.send(json.dumps({"type": "Speak", "text": piece}))
                self._flushes.append(loop.time())
                self._activity = loop.time()
                await ws.send(FLUSH)
        except ConnectionClosed:
            return  # the reader tells how the connection ended

    def _budget_left(self, now: float) -> bool:
        while self._flushes and self._flushes[0] <= now - _WINDOW:
            self._flushes.popleft()
        return len(self._flushes) < self._tts.settings.max_flushes_per_minute

    async def _read(self, ws: ClientConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        loop = asyncio.get_running_loop()
        timeout = self._tts.settings.timeout
        while True:
            if self._writer_done and not self._segments and not self._sentences:
                return
            try:
                message = await asyncio.wait_for(ws.recv(), _POLL)
            except TimeoutError:
                if self._segments and loop.time() - self._activity > timeout:
                    raise self._tts.error(
                        f"the stream stalled: no audio for {timeout:g} s", kind=ErrorKind.STALLED
                    ) from None
                continue
            except ConnectionClosed as exc:
                frame = exc.rcvd
                raise close_error(
                    self._tts, frame.code if frame else None, frame.reason if frame else "", what="speech connection"
                ) from None
            self._activity = loop.time()
            self._heard = True
            if isinstance(message, bytes):
                await self._audio_in(message)
            else:
                await self._control(message)

    async def _audio_in(self, data: bytes) -> None:
        if not self._segments:
            logger.debug("{}: ignoring {} bytes of audio outside any segment", self.label, len(data))
            return
        self._audio += data
        size = self._tts.frame_bytes
        while len(self._audio) >= size:
            frame = AudioFrame(bytes(self._audio[:size]), self._tts.sample_rate)
            del self._audio[:size]
            await self._emit(frame)

    async def _emit(self, frame: AudioFrame | None, *, end: bool = False) -> None:
        """Send the held frame (the segment's last when ``end``), then hold ``frame``."""
        held, self._held = self._held, frame
        if held is not None:
            await self.wait_for_room(self._max_pending)
            text = self._segments[0] if self._first else ""
            self.send(SynthesizedAudio(held, text, segment_end=end))
            self._first = end

    async def _control(self, message: str) -> None:
        try:
            data: Any = json.loads(message)
        except ValueError:
            logger.warning("{}: ignoring a message that is not JSON", self.label)
            return
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "Flushed":
            if not self._segments:
                return
            if len(self._audio) % 2:
                del self._audio[-1:]  # a half sample cannot be played
            if self._audio:
                await self._emit(AudioFrame(bytes(self._audio), self._tts.sample_rate))
                self._audio.clear()
            await self._emit(None, end=True)
            self._segments.popleft()
            self._first = True
        elif kind == "Warning":
            # {"code", "description"} in the current reference, {"warn_code", "warn_msg"} before it.
            code = data.get("code") or data.get("warn_code")
            text = data.get("description") or data.get("warn_msg")
            logger.warning("{}: server warning {}: {}", self.label, code, describe(self._tts, text or ""))
        elif kind in ("Error", "error"):
            code = data.get("code") or data.get("err_code") or data.get("variant") or "Error"
            text = data.get("description") or data.get("err_msg") or data.get("message") or ""
            raise self._tts.error(
                f"error message from the server: {describe(self._tts, f'{code}: {text}' if text else code)}",
                recoverable=False,
            )
        elif kind == "Metadata":
            model, request = data.get("model_name"), data.get("request_id")
            logger.debug("{}: speaking with {} (request {})", self.label, model, request)
        elif kind != "Cleared":
            logger.debug("{}: ignoring a message of type {!r}", self.label, kind)
