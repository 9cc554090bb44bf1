"""Vocalis side of the benchmark (see bench/README.md for the contract).

Fakes are built on Vocalis's public provider base classes and are
equivalent to the peers' fakes: a VAD that reads the first sample, an STT
that gives its final the moment the segment is flushed, an LLM that streams
20 tokens at once and a TTS that returns 100 ms per sentence at once. The
output transport paces audio in real time like a network transport does.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

T0 = time.perf_counter()
if __name__ == "__main__" and sys.argv[1:2] == ["import"]:
    from vocalis import Agent, AgentSession, CascadingPipeline

    print(json.dumps({"import_s": time.perf_counter() - T0}))
    raise SystemExit(0)

from vocalis import Agent, AgentSession, CascadingPipeline, EOUConfig, InterruptConfig
from vocalis.audio import AudioFrame
from vocalis.chat import ChatContext
from vocalis.providers.audio_output import AudioOutput
from vocalis.providers.llm import LLM, ChatChunk, ToolSpec
from vocalis.providers.stt import STT, SpeechEvent, SpeechEventType, STTStream
from vocalis.providers.transport import AudioSink, Transport
from vocalis.providers.tts import TTS
from vocalis.providers.vad import VAD, VADEvent, VADEventType, VADStream

RATE = 16_000
FRAME = 320  # 20 ms
SPEECH = AudioFrame(b"\x01\x00" * FRAME, RATE)
SILENCE = AudioFrame(bytes(2 * FRAME), RATE)
TOKENS = ["Sure"] + [" word"] * 18 + ["."]
AUDIO_100MS = AudioFrame(b"\x10\x00" * 2400, 24_000)
MARKS: dict[str, float] = {}


class BenchVAD(VAD):
    name: ClassVar[str] = "bench"

    def stream(self) -> VADStream:
        return _VADStream(self.label)


class _VADStream(VADStream):
    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.speaking = False
        self.speech_duration = 0.0

    def push_frame(self, frame: AudioFrame) -> None:
        loud = frame.data[:2] != b"\x00\x00"
        if loud is not self.speaking:
            self.speaking = loud
            kind = VADEventType.START_OF_SPEECH if loud else VADEventType.END_OF_SPEECH
            self.send(VADEvent(kind))
        self.speech_duration = 1.0 if loud else 0.0


class BenchSTT(STT):
    name: ClassVar[str] = "bench"
    streaming: ClassVar[bool] = True

    def stream(self, *, language: str | None = None) -> STTStream:
        return _STTStream(self.label)


class _STTStream(STTStream):
    def push_frame(self, frame: AudioFrame) -> None:
        pass

    def flush(self) -> None:
        MARKS["final"] = time.perf_counter()
        self.send(SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, "what is the weather"))


class BenchLLM(LLM):
    name: ClassVar[str] = "bench"

    async def chat(
        self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = (), tool_choice: str | None = None
    ) -> AsyncIterator[ChatChunk]:
        for token in TOKENS:
            yield ChatChunk(text=token)


class BenchTTS(TTS):
    name: ClassVar[str] = "bench"
    sample_rate: ClassVar[int] = 24_000

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        yield AUDIO_100MS


class PacedOutput(AudioOutput):
    """Plays out in real time, 20 ms at a time, like a network transport."""

    def __init__(self, paced: bool) -> None:
        super().__init__()
        self.paced = paced
        self.queue: deque[AudioFrame] = deque()
        self.last_played = 0.0
        self._player: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def deliver(self, frame: AudioFrame) -> None:
        if "first_audio" not in MARKS:
            MARKS["first_audio"] = time.perf_counter()
        if self.paced:
            self.queue.append(frame)
            self._wake.set()
            if self._player is None:
                self._player = asyncio.get_running_loop().create_task(self._play())

    def discard(self) -> None:
        self.queue.clear()

    async def _play(self) -> None:
        while True:
            while not self.queue:
                self._wake.clear()
                await self._wake.wait()
            frame = self.queue.popleft()
            self.last_played = time.perf_counter()
            await asyncio.sleep(frame.duration)


class BenchTransport(Transport):
    name: ClassVar[str] = "bench"

    def __init__(self, paced: bool = False) -> None:
        super().__init__()
        self.audio_output: PacedOutput = PacedOutput(paced)
        self.sink: AudioSink | None = None

    async def start(self, sink: AudioSink) -> None:
        self.sink = sink


def make_session(paced: bool = False) -> tuple[AgentSession, BenchTransport]:
    pipeline = CascadingPipeline(
        stt=BenchSTT(),
        llm=BenchLLM(),
        tts=BenchTTS(),
        vad=BenchVAD(),
        turn_detector=None,
        eou_config=EOUConfig(min_delay=0.0, max_delay=0.0, stt_watchdog=0.0),
        interrupt_config=InterruptConfig(min_duration=0.0, min_words=0, resume_false_interruption=False),
    )
    return AgentSession(Agent("You are a benchmark."), pipeline), BenchTransport(paced)


async def user_turn(transport: BenchTransport) -> None:
    assert transport.sink is not None
    for _ in range(5):
        transport.sink.push_audio(SPEECH)
    transport.sink.push_audio(SILENCE)


async def scenario_p1(turns: int) -> dict[str, Any]:
    session, transport = make_session()
    await session.start(transport)
    samples = []
    for _ in range(turns + 3):
        MARKS.clear()
        del session.agent.chat_context.items[1:]  # the same turn every time
        done = asyncio.Event()
        session.once("agent_turn", lambda _: done.set())  # noqa: B023
        await user_turn(transport)
        await done.wait()
        samples.append((MARKS["first_audio"] - MARKS["final"]) * 1000)
        await session.audio_output.wait_for_playout()
    await session.close()
    return {"samples_ms": samples[3:]}


async def scenario_p2(turns: int) -> dict[str, Any]:
    session, transport = make_session(paced=True)
    await session.start(transport)
    samples = []
    for _ in range(turns):
        handle = await session.say("This sentence is long. " * 20)
        while transport.audio_output.last_played == 0.0 or len(transport.audio_output.queue) < 5:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        decided = time.perf_counter()
        handle.interrupt()
        await handle
        await asyncio.sleep(0.1)
        samples.append(max(0.0, transport.audio_output.last_played - decided) * 1000)
        transport.audio_output.last_played = 0.0
    await session.close()
    return {"samples_ms": samples}


def rss_kb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024


async def scenario_p3(sessions: int, seconds: float) -> dict[str, Any]:
    gc.collect()
    before = rss_kb()
    pairs = [make_session() for _ in range(sessions)]
    for session, transport in pairs:
        await session.start(transport)
    gc.collect()
    gc.freeze()  # long-lived session objects: keep full collections short
    sinks = [transport.sink for _, transport in pairs]
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    tick = loop.time()
    end = tick + seconds
    while tick < end:
        lags.append(max(0.0, loop.time() - tick) * 1000)
        for sink in sinks:
            sink.push_audio(SILENCE)  # type: ignore[union-attr]
        tick += 0.02
        await asyncio.sleep(max(0.0, tick - loop.time()))
    after = rss_kb()
    for session, _ in pairs:
        await session.close()
    lags.sort()
    return {
        "sessions": sessions,
        "lag_p99_ms": lags[int(0.99 * (len(lags) - 1))],
        "rss_per_session_kb": (after - before) / sessions,
    }


async def scenario_start() -> dict[str, Any]:
    started = time.perf_counter()
    session, transport = make_session()
    await session.start(transport)
    elapsed = time.perf_counter() - started
    await session.close()
    return {"start_s": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["import", "start", "p1", "p2", "p3"])
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.scenario == "start":
        result = asyncio.run(scenario_start())
    elif args.scenario == "p1":
        result = asyncio.run(scenario_p1(args.turns))
    elif args.scenario == "p2":
        result = asyncio.run(scenario_p2(args.turns))
    else:
        result = asyncio.run(scenario_p3(args.sessions, args.seconds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
