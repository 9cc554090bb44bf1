"""Pipecat side of the benchmark (see bench/README.md for the contract).

Run with the Pipecat venv: ``bench/.venvs/pipecat/bin/python bench/drivers/pipecat_driver.py p1``.

Built only from Pipecat's public API, the way a Pipecat app is built:

    Pipeline([transport.input(), stt, context_aggregator.user(), llm, tts,
              transport.output(), context_aggregator.assistant()])

run by a ``PipelineWorker`` (formerly ``PipelineTask``) on a ``WorkerRunner``
(formerly ``PipelineRunner``), with the worker's defaults (RTVI processor and
observer, turn tracking observer, idle observer).

Fakes, on Pipecat's own base classes and equivalent to the other drivers':

- VAD: ``VADAnalyzer`` subclass; a 20 ms chunk whose first sample is non-zero
  is speech (confidence 1). ``start_secs``/``stop_secs`` = 0, ``min_volume`` = 0.
  It sits where Pipecat puts the VAD now, in ``LLMUserAggregatorParams``.
- STT: ``STTService`` subclass; a streaming service that gets every audio
  frame and pushes a final ``TranscriptionFrame`` (``finalized=True``) the
  moment it is told the user stopped speaking (``VADUserStoppedSpeakingFrame``),
  like a streaming STT finalising on VAD stop. ``ttfs_p99_latency`` = 0.
- Turn: user turn starts on VAD (``VADUserTurnStartStrategy``), stops with
  ``SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0)`` (Pipecat's
  minimum; the default stop strategy is the Smart Turn model), so the turn is
  decided the moment the final transcript arrives.
- LLM: ``LLMService`` subclass answering ``LLMContextFrame`` with
  ``LLMFullResponseStartFrame``, 20 ``LLMTextFrame`` tokens at once,
  ``LLMFullResponseEndFrame`` (same shape as Pipecat's OpenAI service).
- TTS: ``TTSService`` subclass (HTTP-service style, like Piper): 100 ms of
  24 kHz 16-bit audio per sentence, at once, as one ``TTSAudioRawFrame``.
- Transport: ``BaseTransport`` with a ``BaseInputTransport`` the driver pushes
  ``InputAudioRawFrame``s into (``push_audio_frame``) and a
  ``BaseOutputTransport`` whose ``write_audio_frame`` paces in real time, one
  40 ms chunk (Pipecat's default ``audio_out_10ms_chunks=4``) per chunk length.

Loguru is set to WARNING (Pipecat logs at DEBUG to stderr by default).
"""

from __future__ import annotations

import sys
import time

T0 = time.perf_counter()
if __name__ == "__main__" and sys.argv[1:2] == ["import"]:
    import json

    # What a Pipecat voice agent imports (the fake services below use exactly these).
    from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams
    from pipecat.frames.frames import InputAudioRawFrame, TranscriptionFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMContextAggregatorPair,
        LLMUserAggregatorParams,
    )
    from pipecat.services.llm_service import LLMService
    from pipecat.services.stt_service import STTService
    from pipecat.services.tts_service import TTSService
    from pipecat.transports.base_input import BaseInputTransport
    from pipecat.transports.base_output import BaseOutputTransport
    from pipecat.transports.base_transport import BaseTransport, TransportParams
    from pipecat.turns.user_start import VADUserTurnStartStrategy
    from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
    from pipecat.turns.user_turn_strategies import UserTurnStrategies
    from pipecat.workers.runner import WorkerRunner

    print(json.dumps({"import_s": time.perf_counter() - T0}))
    raise SystemExit(0)

import argparse
import asyncio
import gc
import json
import os
from collections.abc import AsyncGenerator
from typing import Any

from loguru import logger
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams
from pipecat.frames.frames import (
    BotStoppedSpeakingFrame,
    Frame,
    InputAudioRawFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMRunFrame,
    OutputAudioRawFrame,
    StartFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings, STTSettings, TTSSettings
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_start import VADUserTurnStartStrategy
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.utils.time import time_now_iso8601
from pipecat.workers.runner import WorkerRunner

IN_RATE = 16_000
OUT_RATE = 24_000
FRAME = 320  # 20 ms at 16 kHz
SPEECH = b"\x01\x00" * FRAME
SILENCE = bytes(2 * FRAME)
TOKENS = ["Sure"] + [" word"] * 18 + ["."]  # one sentence -> 100 ms of audio
LONG_TOKENS = ["This sentence is long. "] * 20  # 20 sentences -> 2 s of audio
AUDIO_100MS = b"\x10\x00" * (OUT_RATE // 10)
MARKS: dict[str, float] = {}


def quiet_logs() -> None:
    logger.remove()
    logger.add(sys.stderr, level="WARNING")


# --------------------------------------------------------------------------- fakes


class BenchVAD(VADAnalyzer):
    """No model: a chunk whose first sample is non-zero is speech."""

    def num_frames_required(self) -> int:
        return int(self.sample_rate * 0.02)

    def voice_confidence(self, buffer: bytes) -> float:
        return 1.0 if buffer[:2] != b"\x00\x00" else 0.0


class BenchSTT(STTService):
    """Streaming STT: gets the audio; says its final the moment the user stops."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(ttfs_p99_latency=0.0, settings=STTSettings(model=None, language=None), **kwargs)
        self.text = "what is the weather"

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        yield None  # audio goes "to the provider"; results arrive via push_frame

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            MARKS["final"] = time.perf_counter()
            await self.push_frame(TranscriptionFrame(self.text, "", time_now_iso8601(), finalized=True))


class BenchLLM(LLMService):
    """Streams its tokens at once, shaped like Pipecat's OpenAI service."""

    def __init__(self, **kwargs: Any) -> None:
        unset = dict.fromkeys(
            [
                "model",
                "system_instruction",
                "temperature",
                "max_tokens",
                "top_p",
                "top_k",
                "frequency_penalty",
                "presence_penalty",
                "seed",
                "user_turn_completion_config",
            ]
        )
        super().__init__(settings=LLMSettings(**unset, filter_incomplete_user_turns=False), **kwargs)
        self.tokens = TOKENS

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            await self.push_frame(LLMFullResponseStartFrame())
            await self.start_processing_metrics()
            for token in self.tokens:
                await self._push_llm_text(token)
            await self.stop_processing_metrics()
            await self.push_frame(LLMFullResponseEndFrame())
        else:
            await self.push_frame(frame, direction)


class BenchTTS(TTSService):
    """100 ms of audio per sentence, at once (HTTP-service style, like Piper's)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            sample_rate=OUT_RATE,
            settings=TTSSettings(model=None, voice=None, language=None),
            **kwargs,
        )

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        yield TTSAudioRawFrame(AUDIO_100MS, OUT_RATE, 1, context_id=context_id)


class MarkedVADTurnStart(VADUserTurnStartStrategy):
    """Pipecat's VAD turn start; notes when it decides (that is the barge-in decision)."""

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        if isinstance(frame, VADUserStartedSpeakingFrame):
            MARKS["decided"] = time.perf_counter()
        return await super().process_frame(frame)


class BenchInput(BaseInputTransport):
    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)


class BenchOutput(BaseOutputTransport):
    """Notes audio arriving; writes it out paced in real time like a network transport."""

    def __init__(self, params: TransportParams, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.last_write = 0.0
        self.writes = 0
        self.bot_stopped = asyncio.Event()
        self._next_send = 0.0

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, OutputAudioRawFrame) and "first_audio" not in MARKS:
            MARKS["first_audio"] = time.perf_counter()
        await super().process_frame(frame, direction)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        now = time.perf_counter()
        self.last_write = now
        self.writes += 1
        duration = len(frame.audio) / (2 * frame.sample_rate * frame.num_channels)
        self._next_send = max(self._next_send, now) + duration
        await asyncio.sleep(self._next_send - now)
        return True

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        if isinstance(frame, BotStoppedSpeakingFrame) and direction == FrameDirection.DOWNSTREAM:
            self.bot_stopped.set()
        await super().push_frame(frame, direction)


class BenchTransport(BaseTransport):
    def __init__(self) -> None:
        super().__init__()
        params = TransportParams(audio_in_enabled=True, audio_out_enabled=True)
        self._input = BenchInput(params)
        self._output = BenchOutput(params)

    def input(self) -> BenchInput:
        return self._input

    def output(self) -> BenchOutput:
        return self._output


# --------------------------------------------------------------------------- session


class Session:
    """One Pipecat bot: pipeline + worker + runner, as a Pipecat app builds it."""

    def __init__(self) -> None:
        self.transport = BenchTransport()
        self.stt = BenchSTT()
        self.llm = BenchLLM()
        self.tts = BenchTTS()
        self.context = LLMContext([{"role": "system", "content": "You are a benchmark."}])
        self.aggregators = LLMContextAggregatorPair(
            self.context,
            user_params=LLMUserAggregatorParams(
                vad_analyzer=BenchVAD(params=VADParams(confidence=0.5, start_secs=0.0, stop_secs=0.0, min_volume=0.0)),
                user_turn_strategies=UserTurnStrategies(
                    start=[MarkedVADTurnStart()],
                    stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.0)],
                ),
            ),
        )
        pipeline = Pipeline(
            [
                self.transport.input(),
                self.stt,
                self.aggregators.user(),
                self.llm,
                self.tts,
                self.transport.output(),
                self.aggregators.assistant(),
            ]
        )
        self.worker = PipelineWorker(
            pipeline,
            params=PipelineParams(audio_in_sample_rate=IN_RATE, audio_out_sample_rate=OUT_RATE),
        )
        self.runner = WorkerRunner(handle_sigint=False)
        self.ready = asyncio.Event()
        self._run_task: asyncio.Task[None] | None = None

        @self.worker.event_handler("on_pipeline_started")
        async def _started(worker: PipelineWorker, frame: StartFrame) -> None:
            self.ready.set()

    @property
    def input(self) -> BenchInput:
        return self.transport.input()

    @property
    def output(self) -> BenchOutput:
        return self.transport.output()

    async def start(self) -> None:
        await self.runner.add_workers(self.worker)
        self._run_task = asyncio.get_running_loop().create_task(self.runner.run())
        await self.ready.wait()

    async def push_audio(self, audio: bytes) -> None:
        await self.input.push_audio_frame(InputAudioRawFrame(audio=audio, sample_rate=IN_RATE, num_channels=1))

    def reset_context(self) -> None:
        self.context.set_messages([{"role": "system", "content": "You are a benchmark."}])

    async def close(self) -> None:
        await self.worker.cancel()
        if self._run_task is not None:
            await self._run_task


async def user_turn(session: Session) -> None:
    for _ in range(5):
        await session.push_audio(SPEECH)
    await session.push_audio(SILENCE)


# --------------------------------------------------------------------------- scenarios


async def scenario_start() -> dict[str, Any]:
    started = time.perf_counter()
    session = Session()
    await session.start()
    elapsed = time.perf_counter() - started
    await session.close()
    return {"start_s": elapsed}


async def scenario_p1(turns: int) -> dict[str, Any]:
    session = Session()
    await session.start()
    samples = []
    for _ in range(turns + 3):  # the first 3 turns warm up
        session.reset_context()  # the same turn every time
        MARKS.clear()
        session.output.bot_stopped.clear()
        await user_turn(session)
        await asyncio.wait_for(session.output.bot_stopped.wait(), 10)
        samples.append((MARKS["first_audio"] - MARKS["final"]) * 1000)
    await session.close()
    return {"samples_ms": samples[3:]}


async def scenario_p2(turns: int) -> dict[str, Any]:
    session = Session()
    await session.start()
    out = session.output
    samples = []
    for i in range(turns):
        session.reset_context()
        session.llm.tokens = LONG_TOKENS
        out.writes = 0
        await session.worker.queue_frame(LLMRunFrame())  # the bot talks for 2 s
        while out.writes < 3:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        # Barge in at a different phase of the 40 ms output chunk each time.
        await asyncio.sleep(0.1 + (i % 8) * 0.005)
        session.llm.tokens = TOKENS  # the answer to the barge-in is short
        MARKS.clear()
        await session.push_audio(SPEECH)  # the user barges in; the VAD turn start decides
        await asyncio.sleep(0.3)
        decided = MARKS["decided"]
        samples.append(max(0.0, out.last_write - decided) * 1000)
        # Finish the user's turn and let the short answer play out.
        session.output.bot_stopped.clear()
        await session.push_audio(SILENCE)
        await asyncio.wait_for(session.output.bot_stopped.wait(), 10)
    await session.close()
    return {"samples_ms": samples}


def rss_kb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024


async def scenario_p3(sessions: int, seconds: float) -> dict[str, Any]:
    # One-time lazy import (the LLM adapter, which imports `openai`) is not per-session cost.
    BenchLLM()
    gc.collect()
    before = rss_kb()
    all_sessions = [Session() for _ in range(sessions)]
    for session in all_sessions:
        await session.start()
    gc.collect()
    gc.freeze()  # long-lived session objects: keep full collections short (as the other drivers)
    inputs = [session.input for session in all_sessions]
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    tick = loop.time()
    end = tick + seconds
    while tick < end:
        lags.append(max(0.0, loop.time() - tick) * 1000)
        for transport_in in inputs:
            await transport_in.push_audio_frame(InputAudioRawFrame(audio=SILENCE, sample_rate=IN_RATE, num_channels=1))
        tick += 0.02
        await asyncio.sleep(max(0.0, tick - loop.time()))
    after = rss_kb()
    for session in all_sessions:
        await session.close()
    lags.sort()
    return {
        "sessions": sessions,
        "lag_p99_ms": lags[int(0.99 * (len(lags) - 1))],
        "rss_per_session_kb": (after - before) / sessions,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["import", "start", "p1", "p2", "p3"])
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    quiet_logs()
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
