"""A served WebRTC transport and an aiortc client playing the browser, for the tests."""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import av
import numpy as np
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from vocalis import Agent, CascadingPipeline
from vocalis.serve.http import build_app
from vocalis.serve.server import ServeOptions, SessionServer
from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD
from vocalis_webrtc import WebRTCTransport

RATE = 48_000
FRAME = 960  # 20 ms at 48 kHz


def fake_pipeline(transcripts: list[str] | None = None, reply: str = "It is sunny in Boston.") -> CascadingPipeline:
    """Fakes only: a tone is speech, each speech segment the next transcript."""
    return CascadingPipeline(
        stt=FakeSTT(transcripts if transcripts is not None else ["what is the weather in boston"] * 5),
        llm=FakeLLM([reply]),
        tts=FakeTTS(),
        vad=FakeVAD(),
        turn_detector=None,
    )


@dataclass
class Served:
    """A running ``vocalis serve``-like app with the WebRTC transport."""

    server: SessionServer
    url: str  # base URL, no trailing slash
    http: aiohttp.ClientSession

    @property
    def token(self) -> str:
        return self.server.token

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}


@asynccontextmanager
async def serving(
    *,
    pipeline: Callable[[], CascadingPipeline] = fake_pipeline,
    **options: Any,
) -> AsyncIterator[Served]:
    """Serve the transport on 127.0.0.1:<random port> for the duration."""
    server = SessionServer(lambda: Agent("You are helpful."), pipeline, ServeOptions(**options))
    runner = web.AppRunner(build_app(server, [WebRTCTransport]), handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            yield Served(server, f"http://127.0.0.1:{port}", http)
    finally:
        await server.aclose()
        await runner.cleanup()


class ScriptedMic(MediaStreamTrack):
    """The browser's microphone: silence, then the queued chunks, in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pending = np.zeros(0, dtype=np.int16)
        self._start: float | None = None
        self._count = 0

    def say(self, seconds: float, frequency: float = 300.0) -> None:
        """Queue a loud tone (what the fake VAD and STT take for speech)."""
        t = np.arange(int(seconds * RATE)) / RATE
        tone = (0.3 * 32767 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
        self._pending = np.concatenate([self._pending, tone])

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            await asyncio.sleep(max(0.0, self._start + self._count * 0.02 - now))
        chunk, self._pending = self._pending[:FRAME], self._pending[FRAME:]
        chunk = np.concatenate([chunk, np.zeros(FRAME - len(chunk), dtype=np.int16)])
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.time_base = fractions.Fraction(1, RATE)
        frame.pts = self._count * FRAME
        self._count += 1
        return frame


@dataclass
class Client:
    """An aiortc peer connection doing what the page does."""

    pc: RTCPeerConnection
    mic: ScriptedMic
    channel: Any
    messages: list[dict[str, Any]] = field(default_factory=list)
    loud_frames: int = 0
    frames: int = 0
    new_message: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]

    def named(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds (re-checked on every message and frame)."""

        async def loop() -> None:
            while not predicate():
                self.new_message.clear()
                await self.new_message.wait()

        await asyncio.wait_for(loop(), timeout)

    def _on_message(self, text: str) -> None:
        self.messages.append(json.loads(text))
        self.new_message.set()

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.frames += 1
            if np.abs(frame.to_ndarray().astype(np.int32)).max() > 1000:
                self.loud_frames += 1
            self.new_message.set()

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


async def offer(served: Served, client_pc: RTCPeerConnection, **headers: str) -> aiohttp.ClientResponse:
    """Send the client's offer to ``POST /webrtc/offer``; returns the response (read)."""
    await client_pc.setLocalDescription(await client_pc.createOffer())
    body = {"sdp": client_pc.localDescription.sdp, "type": client_pc.localDescription.type}
    async with served.http.post(f"{served.url}/webrtc/offer", json=body, headers=headers or served.headers()) as resp:
        await resp.read()
        return resp


async def connect(served: Served, **headers: str) -> Client:
    """Connect like the page: mic track, ``events`` channel, offer, answer."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    mic = ScriptedMic()
    pc.addTrack(mic)
    channel = pc.createDataChannel("events")
    client = Client(pc, mic, channel)
    channel.on("message", client._on_message)

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        client._reader = asyncio.get_running_loop().create_task(client._read(track))

    resp = await offer(served, pc, **headers)
    if resp.status != 200:
        await pc.close()
        raise AssertionError(f"offer refused: {resp.status} {await resp.text()}")
    answer = await resp.json()
    assert answer["type"] == "answer" and "a=candidate" in answer["sdp"], "the answer must carry its candidates"
    await pc.setRemoteDescription(RTCSessionDescription(**answer))
    opened = asyncio.Event()
    channel.on("open", opened.set)
    if channel.readyState != "open":
        await asyncio.wait_for(opened.wait(), 10)
    return client
