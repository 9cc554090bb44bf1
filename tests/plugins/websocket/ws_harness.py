"""Test harness: a served SessionServer of fakes, a Twilio-side client and a raw-PCM client.

The Twilio client plays Twilio's part of a bidirectional Media Stream as the
public "Media Streams - WebSocket Messages" reference describes it: it sends
``connected``, ``start``, ``media`` (base64 8 kHz μ-law, with track, chunk
and timestamp), ``mark`` echoes, ``dtmf`` and ``stop`` with sequence numbers,
and it checks that every message the server sends is one of the three a
server may send (``media``, ``mark``, ``clear``) with exactly the documented
fields and the stream's ``streamSid``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Self

import aiohttp
import numpy as np
from aiohttp import web
from loguru import logger

from vocalis import Agent, CascadingPipeline, EOUConfig
from vocalis.serve.http import build_app
from vocalis.serve.server import ServeOptions, SessionServer
from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD
from vocalis_websocket import PCMWebSocketTransport, TwilioTransport
from vocalis_websocket.g711 import ulaw_decode, ulaw_encode

TOKEN = "test-token-0123456789"
STREAM_SID = "MZ" + "0" * 31 + "1"
CALL_SID = "CA" + "0" * 31 + "1"
ACCOUNT_SID = "AC" + "0" * 32


def tone_pcm(seconds: float, rate: int, *, frequency: float = 220.0, amplitude: float = 0.3) -> np.ndarray:
    """A sine tone as int16: what FakeVAD/FakeSTT hear as speech."""
    t = np.arange(round(seconds * rate)) / rate
    return np.round(amplitude * 32767 * np.sin(2 * math.pi * frequency * t)).astype(np.int16)


def silence_pcm(seconds: float, rate: int) -> np.ndarray:
    return np.zeros(round(seconds * rate), dtype=np.int16)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def fake_tts_seconds(tts: FakeTTS) -> float:
    """Seconds of audio FakeTTS made for what it spoke (its own sizing rule)."""
    return sum(max(1, round(len(t) * tts.seconds_per_char / tts.frame_seconds)) * tts.frame_seconds for t in tts.spoken)


def echo_answer(ctx: Any, tools: Any) -> str:
    """A FakeLLM script that answers from the context: it repeats the user's last words."""
    message = ctx.last_message("user")
    return f"You said {message.content if message else 'nothing'}."


class Harness:
    """A SessionServer of fake pipelines served on 127.0.0.1 with both transports.

    Args:
        transcripts: What FakeSTT hears, per speech segment (per session).
        answers: FakeLLM's script (per session).
        **options: ServeOptions fields.
    """

    def __init__(
        self,
        transcripts: Sequence[str] = (),
        answers: Sequence[Any] = (echo_answer,),
        *,
        transports: Sequence[Any] = (TwilioTransport, PCMWebSocketTransport),
        **options: Any,
    ) -> None:
        self.transcripts = list(transcripts)
        self.answers = list(answers)
        self.transports = transports
        self.options = ServeOptions(token=TOKEN, **options)
        self.agents: list[Agent] = []
        self.pipelines: list[CascadingPipeline] = []
        self.agent_made = asyncio.Event()

    def make_agent(self) -> Agent:
        agent = Agent("Answer in one sentence.")
        self.agents.append(agent)
        self.agent_made.set()
        return agent

    def make_pipeline(self) -> CascadingPipeline:
        pipeline = CascadingPipeline(
            stt=FakeSTT(list(self.transcripts)),
            llm=FakeLLM(list(self.answers)),
            tts=FakeTTS(),
            vad=FakeVAD(),
            turn_detector=None,
            eou_config=EOUConfig(min_delay=0.2, max_delay=0.2),
        )
        self.pipelines.append(pipeline)
        return pipeline

    async def __aenter__(self) -> Self:
        self.server = SessionServer(self.make_agent, self.make_pipeline, self.options)
        self.runner = web.AppRunner(build_app(self.server, self.transports), shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()
        await self.server.aclose()
        await self.runner.cleanup()

    def url(self, path: str, **query: Any) -> str:
        text = "&".join(f"{k}={v}" for k, v in query.items())
        return f"ws://127.0.0.1:{self.port}{path}" + (f"?{text}" if text else "")

    def session(self, index: int = -1) -> Any:
        return self.agents[index].session


class Client:
    """Reads a client socket in the background; tests wait on conditions."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.changed = asyncio.Condition()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            while True:
                msg = await self.ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self.on_text(msg.data)
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    self.on_binary(msg.data)
                else:
                    if msg.type is aiohttp.WSMsgType.CLOSE:
                        self.close_reason = msg.extra or ""
                    break
                async with self.changed:
                    self.changed.notify_all()
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()
            async with self.changed:
                self.changed.notify_all()

    def on_text(self, text: str) -> None: ...

    def on_binary(self, data: bytes) -> None: ...

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: predicate() or self.closed.is_set()), timeout)
        assert predicate(), "the socket closed first"

    async def wait_closed(self, timeout: float = 10.0) -> int | None:
        await asyncio.wait_for(self.closed.wait(), timeout)
        return self.close_code

    async def aclose(self) -> None:
        await self.ws.close()
        await asyncio.wait_for(self._reader, 10)


class TwilioCall(Client):
    """Twilio's side of one bidirectional Media Stream."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, *, echo_marks: bool = True) -> None:
        super().__init__(ws)
        self.echo_marks = echo_marks
        self.sequence = 0
        self.chunk = 0
        self.received: list[dict[str, Any]] = []
        self.violations: list[str] = []
        self.audio = bytearray()  # μ-law of every outbound media message, in order
        self.marks: list[str] = []
        self.clears = 0
        self._echoes: set[asyncio.Task[None]] = set()

    # -- Twilio -> server --------------------------------------------------------
    async def send(self, event: str, **fields: Any) -> None:
        message: dict[str, Any] = {"event": event}
        if event != "connected":
            self.sequence += 1
            message["sequenceNumber"] = str(self.sequence)
            message["streamSid"] = STREAM_SID
        message.update(fields)
        await self.ws.send_str(json.dumps(message))

    async def connected(self) -> None:
        await self.send("connected", protocol="Call", version="1.0.0")

    async def start(self, custom_parameters: dict[str, str] | None = None, **media_format: Any) -> None:
        fmt = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1, **media_format}
        await self.send(
            "start",
            start={
                "accountSid": ACCOUNT_SID,
                "streamSid": STREAM_SID,
                "callSid": CALL_SID,
                "tracks": ["inbound"],
                "customParameters": custom_parameters or {},
                "mediaFormat": fmt,
            },
        )

    async def send_pcm(self, samples: np.ndarray, *, realtime: bool = False) -> None:
        """8 kHz int16 samples as 20 ms media messages (paced like a phone line if ``realtime``)."""
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for index, offset in enumerate(range(0, len(samples), 160)):
            self.chunk += 1
            payload = base64.b64encode(ulaw_encode(samples[offset : offset + 160].astype("<i2").tobytes()))
            media = {
                "track": "inbound",
                "chunk": str(self.chunk),
                "timestamp": str(self.chunk * 20),
                "payload": payload.decode(),
            }
            await self.send("media", media=media)
            if realtime:
                await asyncio.sleep(max(0.0, begin + (index + 1) * 0.02 - loop.time()))

    async def stop(self) -> None:
        await self.send("stop", stop={"accountSid": ACCOUNT_SID, "callSid": CALL_SID})

    # -- server -> Twilio --------------------------------------------------------
    def on_text(self, text: str) -> None:
        message = json.loads(text)
        self.received.append(message)
        event = message.get("event")
        expected = {
            "media": {"event", "streamSid", "media"},
            "mark": {"event", "streamSid", "mark"},
            "clear": {"event", "streamSid"},
        }
        if event not in expected:
            self.violations.append(f"unexpected event {event!r}")
            return
        if set(message) != expected[event]:
            self.violations.append(f"{event} has fields {sorted(message)}")
        if message.get("streamSid") != STREAM_SID:
            self.violations.append(f"{event} for stream {message.get('streamSid')!r}")
        if event == "media":
            media = message["media"]
            if set(media) != {"payload"}:
                self.violations.append(f"media.media has fields {sorted(media)}")
            self.audio += base64.b64decode(media["payload"], validate=True)
        elif event == "mark":
            name = message["mark"]["name"]
            self.marks.append(name)
            if self.echo_marks:  # "played": Twilio echoes the mark once the audio before it has played
                task = asyncio.get_running_loop().create_task(self.send("mark", mark={"name": name}))
                self._echoes.add(task)
                task.add_done_callback(self._echoes.discard)
        elif event == "clear":
            self.clears += 1

    def on_binary(self, data: bytes) -> None:
        self.violations.append("binary message")

    def pcm(self) -> np.ndarray:
        """Everything the agent said, decoded to 8 kHz int16."""
        return np.frombuffer(ulaw_decode(bytes(self.audio)), dtype="<i2")


class PCMClient(Client):
    """A custom client of the raw ``/ws`` protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        super().__init__(ws)
        self.events: list[dict[str, Any]] = []
        self.audio = bytearray()
        self.binary_sizes: list[int] = []

    def on_text(self, text: str) -> None:
        self.events.append(json.loads(text))

    def on_binary(self, data: bytes) -> None:
        self.audio += data
        self.binary_sizes.append(len(data))

    def named(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    async def send_json(self, message: Any) -> None:
        await self.ws.send_str(json.dumps(message))

    async def send_pcm(self, samples: np.ndarray, rate: int, *, realtime: bool = False) -> None:
        loop = asyncio.get_running_loop()
        begin = loop.time()
        step = rate // 50
        for index, offset in enumerate(range(0, len(samples), step)):
            await self.ws.send_bytes(samples[offset : offset + step].astype("<i2").tobytes())
            if realtime:
                await asyncio.sleep(max(0.0, begin + (index + 1) * 0.02 - loop.time()))

    def pcm(self) -> np.ndarray:
        return np.frombuffer(bytes(self.audio), dtype="<i2")


async def twilio_call(harness: Harness, *, query_token: str | None = None, **kwargs: Any) -> TwilioCall:
    query = {"token": query_token} if query_token is not None else {}
    ws = await harness.http.ws_connect(harness.url("/twilio", **query))
    return TwilioCall(ws, **kwargs)


async def pcm_client(harness: Harness, *, token: str | None = TOKEN, **query: Any) -> PCMClient:
    if token is not None:
        query["token"] = token
    ws = await harness.http.ws_connect(harness.url("/ws", **query))
    return PCMClient(ws)


def other_tasks() -> list[asyncio.Task[Any]]:
    """Tasks still alive besides the test's own."""
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and not t.done()]


@contextlib.contextmanager
def captured_logs(level: str = "INFO") -> Iterator[list[str]]:
    """Log lines (``"LEVEL message"``) written inside the block, at ``level`` and above."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"), level=level)
    try:
        yield lines
    finally:
        logger.remove(sink)
