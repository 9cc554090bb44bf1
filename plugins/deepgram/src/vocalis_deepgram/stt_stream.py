"""One live recognition stream over Deepgram's ``/v1/listen`` WebSocket.

Audio goes out as binary frames of raw linear16 PCM, control messages as
JSON text frames: ``Finalize`` when the pipeline's VAD ends a segment
(:meth:`flush`), ``KeepAlive`` after ``keepalive_interval`` without audio,
``CloseStream`` at :meth:`end_input` (Deepgram then sends its last results
and ``Metadata`` and closes with 1000). Server messages become speech events
in :class:`~vocalis_deepgram.listen_events.TranscriptAssembler`.

Reconnection: when the connection drops or Deepgram closes it with a
recoverable code (1011 ``NET-*``, 1006, 1012, ...), a new connection is
opened (up to ``max_reconnects`` times in a row, with back-off) and sent again
every piece of audio that no final result had covered yet (the
:class:`~vocalis_deepgram.replay.AudioJournal`), with ``Finalize`` again where
one was unanswered. Finals already delivered are not repeated (their audio
is not resent) and finals not yet delivered are not lost (their audio is).
Interim words of the dropped connection are heard again from the resent
audio. Timestamps stay on the stream's clock across connections. A failure
that is not recoverable (401, 402, 1008 bad audio) ends the stream at once,
after the words already final are delivered.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.audio import AudioFrame, AudioResampler
from vocalis.providers.base import ProviderError
from vocalis.providers.stt import STTStream
from vocalis_deepgram.errors import close_error, exception_error, message_error
from vocalis_deepgram.listen_events import PendingFlush, TranscriptAssembler
from vocalis_deepgram.replay import AudioJournal

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from vocalis_deepgram.stt import DeepgramSTT

KEEPALIVE = json.dumps({"type": "KeepAlive"})
FINALIZE = json.dumps({"type": "Finalize"})
CLOSE_STREAM = json.dumps({"type": "CloseStream"})
_CLOSE = object()  # end of input: send CloseStream
_MAX_SEND = 16_000  # bytes per binary frame when catching up (0.5 s at 16 kHz)
_MAX_BACKOFF = 5.0
_POLL = 0.25  # seconds between the reader's checks of its deadlines
_MAX_BACKLOG = 1500  # messages queued for the socket (30 s of 20 ms frames)


class DeepgramSTTStream(STTStream):
    """A live stream; built by :meth:`DeepgramSTT.stream`.

    Args:
        stt: The provider (settings, URLs, key).
        language: The language asked for, or None.
    """

    def __init__(self, stt: DeepgramSTT, *, language: str | None) -> None:
        super().__init__(stt.label)
        s = stt.settings
        self._stt = stt
        self._language = language
        self._rate = stt.sample_rate
        self._resampler = AudioResampler(self._rate, 1)
        self._journal = AudioJournal(self._rate, 1, s.max_replay_seconds, stt.label)
        hold = s.endpointing is not None or s.utterance_end_ms is not None
        self._events = TranscriptAssembler(self.send, language, hold_finals=hold)
        self._outbox: deque[object] = deque()  # bytes (audio), str (JSON), or _CLOSE
        self._wake = asyncio.Event()
        self._close_deadline: float | None = None
        self._backlog_warned = False
        self._acked_at_connect = 0.0
        self._last_error: ProviderError | None = None
        self.connections = 0
        """Connections opened so far (1 plus the reconnections)."""
        self.start_task(self._run())

    # -- input ----------------------------------------------------------------------
    def push_frame(self, frame: AudioFrame) -> None:
        if self.input_ended or self._finished:
            return
        converted = self._resampler.push(frame)
        if converted is None or not converted.data:
            return  # an empty binary frame would close the stream
        self._journal.add(converted.data)
        if len(self._outbox) >= _MAX_BACKLOG:
            # The socket is not keeping up (or is being replaced): the audio
            # stays in the journal, which the next connection is sent from.
            if not self._backlog_warned:
                self._backlog_warned = True
                logger.warning("{}: the connection is not keeping up; holding audio for a resend", self.label)
            return
        self._backlog_warned = False
        self._outbox.append(converted.data)
        self._wake.set()

    def flush(self) -> None:
        """The segment ended: ask Deepgram to finalise what it holds now (``Finalize``)."""
        if self.input_ended or self._finished:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._stt.settings.finalize_timeout
        self._events.flushes.append(PendingFlush(self._journal.end, deadline))
        self._outbox.append(FINALIZE)
        self._wake.set()

    def _on_end_input(self) -> None:
        tail = self._resampler.flush()
        if tail is not None and tail.data:
            self._journal.add(tail.data)
            self._outbox.append(tail.data)
        self._outbox.append(_CLOSE)
        self._wake.set()

    # -- connections ----------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._converse()
                self._events.finish()
                return
            except ProviderError as exc:
                if self._journal.start > self._acked_at_connect:
                    failures = 0  # that connection finalised audio: it was no failure in a row
                self._acked_at_connect = self._journal.start
                failures += 1
                if not exc.recoverable or failures > self._stt.settings.max_reconnects:
                    self._events.finish()  # words already final still reach the reader
                    raise
                delay = min(_MAX_BACKOFF, self._stt.settings.reconnect_delay * 2 ** (failures - 1))
                logger.warning(
                    "{}: {}; reconnecting in {:.2f} s (attempt {} of {}), resending {:.2f} s of audio",
                    self.label,
                    str(exc).removeprefix(f"{self.label}: "),
                    delay,
                    failures,
                    self._stt.settings.max_reconnects,
                    self._journal.seconds,
                )
                self._events.connection_lost()
                await asyncio.sleep(delay)

    async def _converse(self) -> None:
        """One connection, from connecting to its close; raises how it failed."""
        ws = await self._connect()
        self._acked_at_connect = self._journal.start
        self._last_error = None
        self._close_deadline = None
        self._events.offset = self._journal.start
        self._replan()
        writer = asyncio.get_running_loop().create_task(self._write(ws))
        reader = asyncio.get_running_loop().create_task(self._read(ws))
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if reader not in done and writer.exception() is None:
                await reader  # CloseStream went out, or the socket closed under the writer
            for task in (reader, writer):
                if task.done() and (exc := task.exception()) is not None:
                    raise exc
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.wait({reader, writer})
            try:
                await ws.close()
            except Exception as exc:  # a dead socket may fail to close; it is gone either way
                logger.debug("{}: closing the socket: {}", self.label, exc)

    async def _connect(self) -> ClientConnection:
        from websockets.asyncio.client import connect

        s = self._stt.settings
        url = self._stt.ws_url("/v1/listen", self._stt.live_params(self._language))
        headers = self._stt.auth_headers()  # raises when the key is missing
        self.connections += 1
        try:
            ws = await connect(
                url,
                additional_headers=headers,
                open_timeout=s.timeout,
                close_timeout=min(s.timeout, 2.0),
                compression=None,
                max_size=4 * 1024 * 1024,
                logger=self._stt.ws_logger(),  # its DEBUG log shows the Authorization header
            )
        except Exception as exc:
            raise exception_error(self._stt, exc, started=False, what="connection") from exc
        request_id = ws.response.headers.get("dg-request-id") if ws.response is not None else None
        logger.debug("{}: connected (request {})", self.label, request_id or "?")
        return ws

    def _replan(self) -> None:
        """What the new connection is sent: the audio no final covers, then what is queued.

        A ``Finalize`` not yet answered goes back in its place in the audio;
        audio pushed while disconnected is already in the journal.
        """
        plan: deque[object] = deque()
        marks = deque(flush.at for flush in self._events.flushes)
        for start, chunk in self._journal.chunks():
            while marks and marks[0] <= start:
                marks.popleft()
                plan.append(FINALIZE)
            plan.append(chunk)
        plan.extend(FINALIZE for _ in marks)
        if self.input_ended:
            plan.append(_CLOSE)
        loop = asyncio.get_running_loop()
        for flush in self._events.flushes:
            flush.deadline = loop.time() + self._stt.settings.finalize_timeout
        self._outbox = plan
        self._wake.set()

    # -- the socket -----------------------------------------------------------------------
    async def _write(self, ws: ClientConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        interval = self._stt.settings.keepalive_interval
        try:
            while True:
                while not self._outbox:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), interval)
                    except TimeoutError:
                        await ws.send(KEEPALIVE)  # a text frame: as binary it would be audio
                item = self._outbox.popleft()
                if item is _CLOSE:
                    self._close_deadline = asyncio.get_running_loop().time() + self._stt.settings.close_timeout
                    await ws.send(CLOSE_STREAM)
                    return
                if isinstance(item, bytes):
                    await ws.send(self._coalesce(item))
                else:
                    await ws.send(str(item))
        except ConnectionClosed:
            return  # the reader tells how the connection ended

    def _coalesce(self, first: bytes) -> bytes:
        """``first`` and the audio queued right after it, up to one send's worth (after a backlog)."""
        if not self._outbox or not isinstance(self._outbox[0], bytes):
            return first
        parts = [first]
        size = len(first)
        while self._outbox and isinstance(self._outbox[0], bytes) and size + len(self._outbox[0]) <= _MAX_SEND:
            chunk = self._outbox.popleft()
            assert isinstance(chunk, bytes)
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)

    async def _read(self, ws: ClientConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        loop = asyncio.get_running_loop()
        while True:
            # Wake up at the next deadline, and at least every _POLL seconds to
            # notice one set meanwhile (a flush, CloseStream). recv() is cancel-safe.
            wait = min(self._next_deadline() or float("inf"), loop.time() + _POLL)
            try:
                message = await asyncio.wait_for(ws.recv(), max(0.0, wait - loop.time()))
            except TimeoutError:
                if self._close_deadline is not None and loop.time() >= self._close_deadline:
                    logger.warning("{}: no close from the server after CloseStream; closing", self.label)
                    return
                self._events.answer_overdue(loop.time())
                continue
            except ConnectionClosed as exc:
                if self._close_deadline is not None and exc.rcvd is not None and exc.rcvd.code == 1000:
                    return  # closed after CloseStream: the stream is complete
                raise self._closed_error(exc) from None
            self._handle(message)

    def _next_deadline(self) -> float | None:
        flushes = self._events.flushes
        times = [flushes[0].deadline] if flushes else []
        if self._close_deadline is not None:
            times.append(self._close_deadline)
        return min(times) if times else None

    def _handle(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            logger.debug("{}: ignoring a binary message ({} bytes)", self.label, len(message))
            return
        try:
            data: Any = json.loads(message)
        except ValueError:
            logger.warning("{}: ignoring a message that is not JSON", self.label)
            return
        if not isinstance(data, dict):
            return
        kind = data.get("type")
        if kind == "Error":
            # Deepgram goes on after a SchemaError; if it closes, the close tells.
            self._last_error = message_error(self._stt, data)
            logger.warning("{}", self._last_error)
        elif kind == "Metadata":
            logger.debug("{}: metadata (request {})", self.label, data.get("request_id"))
        elif kind in ("Results", "SpeechStarted", "UtteranceEnd"):
            acked = self._events.handle(data)
            if acked is not None:
                self._journal.ack(acked)
        else:
            logger.debug("{}: ignoring a message of type {!r}", self.label, kind)

    def _closed_error(self, exc: Any) -> ProviderError:
        frame = exc.rcvd
        code = frame.code if frame is not None else None
        error = close_error(self._stt, code, frame.reason if frame is not None else "")
        if code == 1000:
            # A normal close nobody asked for (e.g. a server restart): open a new one.
            error = self._stt.error("the server closed the connection (code 1000) before CloseStream")
        if self._last_error is not None:
            error = self._stt.error(
                f"{str(error).removeprefix(self.label + ': ')}; last server error: "
                f"{str(self._last_error).removeprefix(self.label + ': ')}",
                recoverable=error.recoverable,
                kind=error.kind,
            )
        return error
