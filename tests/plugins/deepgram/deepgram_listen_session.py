"""One live ``/v1/listen`` connection of the listen server: audio and control
messages in, ``Results``/``SpeechStarted``/``UtteranceEnd``/``Metadata`` out.

See :mod:`deepgram_listen_server` for what it asserts and the reference it follows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import WSMsgType, web
from deepgram_server_base import loud

if TYPE_CHECKING:
    from deepgram_listen_server import Connection, ListenServer

WINDOW = 0.01  # seconds of audio judged at a time


class LiveSession:
    """One live connection: reads audio and control messages, sends results."""

    def __init__(self, server: ListenServer, ws: web.WebSocketResponse, conn: Connection, drop: float | None) -> None:
        self.server, self.ws, self.conn, self.drop = server, ws, conn, drop
        p = conn.params
        self.rate = int(p["sample_rate"])
        self.interims = p.get("interim_results") == "true"
        endpointing = p.get("endpointing", "10")
        self.endpointing = None if endpointing == "false" else int(endpointing) / 1000
        self.utterance_end = int(p["utterance_end_ms"]) / 1000 if "utterance_end_ms" in p else None
        self.vad_events = p.get("vad_events") == "true"
        self.time = 0.0  # seconds of audio received
        self.final_from = 0.0  # audio before this is finalised
        self.words: list[str] | None = None  # the current stretch of speech's words
        self.speech = 0.0  # seconds of speech in it
        self.quiet = 0.0  # seconds of silence since the last speech
        self.last_word_end: float | None = None  # for UtteranceEnd
        self.since_interim = 0.0
        self.remainder = b""
        self.closing = False
        self.out: asyncio.Queue[tuple[float, dict[str, Any] | None]] = asyncio.Queue()
        self.request_id = str(uuid.uuid4())

    async def run(self) -> None:
        sender = asyncio.get_running_loop().create_task(self._send_loop())
        try:
            await self._receive()
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            self.conn.close_code = self.ws.close_code

    async def _receive(self) -> None:
        b = self.server.behaviour
        while True:
            try:
                msg = await self.ws.receive(timeout=b.idle_timeout)
            except TimeoutError:
                await self.ws.close(code=1011, message=b"NET-0001")
                return
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return
            if self.closing:
                self.server.violation(f"a {msg.type.name} message after CloseStream")
                continue
            if msg.type is WSMsgType.BINARY:
                if not await self._audio(msg.data):
                    return
            elif msg.type is WSMsgType.TEXT:
                await self._control(msg.data)

    async def _audio(self, data: bytes) -> bool:
        if not data:
            self.server.violation("an empty binary frame (it closes the stream)")
            return True
        if data[:1] == b"{" and b'"type"' in data[:40]:
            self.server.violation(f"a control message sent as binary: {data[:60]!r}")
            await self.ws.close(code=1008, message=b"DATA-0000")
            return False
        if len(data) % 2:
            self.server.violation(f"a binary frame of {len(data)} bytes: not whole 16-bit samples")
        self.conn.audio += data
        pcm = self.remainder + data
        step = int(self.rate * WINDOW) * 2
        whole = len(pcm) - len(pcm) % step
        self.remainder = pcm[whole:]
        samples = np.frombuffer(pcm[:whole], dtype="<i2")
        for i in range(0, len(samples), step // 2):
            self._window(loud(samples[i : i + step // 2]))
            if self.drop is not None and self.time >= self.drop:
                await self._drop()
                return False
        return True

    async def _drop(self) -> None:
        b = self.server.behaviour
        self.server.carry = self.words
        await asyncio.sleep(0.05)  # let queued results out first
        if b.drop_code is None:
            transport = self.ws._req.transport if self.ws._req is not None else None  # type: ignore[attr-defined]
            if transport is not None:
                transport.abort()
            return
        await self.ws.close(code=b.drop_code, message=b.drop_reason.encode())

    def _window(self, is_loud: bool) -> None:
        self.time = round(self.time + WINDOW, 6)
        if is_loud:
            if self.words is None:
                self.words = self.server.next_transcript().split()
                self.speech = 0.0
                if self.vad_events:
                    self._emit({"type": "SpeechStarted", "channel": [0, 1], "timestamp": round(self.time - WINDOW, 3)})
            self.speech += WINDOW
            self.quiet = 0.0
            self.since_interim += WINDOW
            if self.interims and self.since_interim >= self.server.behaviour.interim_every:
                self.since_interim = 0.0
                shown = min(len(self.words) - 1, max(1, int(self.speech / 0.3)))
                if shown > 0:
                    self._results(" ".join(self.words[:shown]), final=False)
            return
        self.quiet += WINDOW
        if self.words is not None and self.endpointing is not None and self.quiet >= self.endpointing:
            self._finalise(speech_final=True)
        if self.last_word_end is not None and self.utterance_end is not None:
            if self.time - self.last_word_end >= self.utterance_end:
                self._emit({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": self.last_word_end})
                self.last_word_end = None
        if self.words is None and self.time - self.final_from >= 2.0:
            self._results("", final=True)  # Deepgram finalises silence in windows too

    def _finalise(self, *, speech_final: bool = False, from_finalize: bool = False) -> None:
        words, self.words = self.words, None
        text = " ".join(words or [])
        self._results(text, final=True, speech_final=speech_final, from_finalize=from_finalize)
        if words:
            self.last_word_end = round(self.time - self.quiet, 3)

    def _results(self, text: str, *, final: bool, speech_final: bool = False, from_finalize: bool = False) -> None:
        start, end = self.final_from, self.time
        alternative = {"transcript": text, "confidence": 0.98, "words": words_of(text, start, end)}
        message: dict[str, Any] = {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(end - start, 3),
            "start": round(start, 3),
            "is_final": final,
            "speech_final": speech_final,
            "channel": {"alternatives": [alternative]},
            "metadata": {"request_id": self.request_id, "model_info": {"name": "general-nova-3", "arch": "nova-3"}},
        }
        if from_finalize:
            message["from_finalize"] = True
        if final:
            self.final_from = end
        delay = self.server.behaviour.final_delay if final else 0.0
        self._emit(message, delay)

    def _emit(self, message: dict[str, Any] | None, delay: float = 0.0) -> None:
        self.out.put_nowait((asyncio.get_running_loop().time() + delay, message))

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, message = await self.out.get()
            await asyncio.sleep(max(0.0, due - loop.time()))  # in order: a later one never overtakes
            if message is None:
                await self.ws.close(code=1000)
                return
            self.conn.sent.append(message)
            try:
                await self.ws.send_str(json.dumps(message))
            except ConnectionError:
                return

    async def _control(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        allowed = {"KeepAlive": {"type"}, "Finalize": {"type", "channel"}, "CloseStream": {"type"}}
        if kind not in allowed or not set(message) <= allowed[kind]:  # type: ignore[arg-type]
            self.server.violation(f"a text message the API does not take: {text[:80]!r}")
            error = {"type": "Error", "variant": "SchemaError", "description": "unknown message", "message": text}
            self._emit(error)
            return
        self.conn.controls.append(kind)
        if kind == "Finalize":
            held = self.time - self.final_from > WINDOW / 2
            if held or self.server.behaviour.answer_empty_finalize:
                self._finalise(from_finalize=True)
        elif kind == "CloseStream":
            self.closing = True
            if self.words is not None or self.time - self.final_from > WINDOW / 2:
                self._finalise()
            metadata = {
                "type": "Metadata",
                "transaction_key": "deprecated",
                "request_id": self.request_id,
                "sha256": "0" * 64,
                "created": "2025-01-01T00:00:00.000Z",
                "duration": round(self.time, 3),
                "channels": 1,
            }
            self._emit(metadata, self.server.behaviour.final_delay)
            self._emit(None)


def words_of(text: str, start: float, end: float) -> list[dict[str, Any]]:
    """Word objects spread evenly over ``start..end``."""
    words = text.split()
    if not words:
        return []
    step = (end - start) / len(words)
    return [
        {
            "word": word.strip(".,?!").lower(),
            "start": round(start + i * step, 3),
            "end": round(start + (i + 1) * step, 3),
            "confidence": 0.98,
            "punctuated_word": word,
        }
        for i, word in enumerate(words)
    ]
