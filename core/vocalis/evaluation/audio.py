"""Audio mode: the user's turns are spoken into the session and the agent is heard back.

The whole stack runs as in a call: a voice (a TTS; the offline Piper by
default) speaks each user line into the session's microphone, or a WAV file
is played into it; the session's own VAD, STT and turn detection decide when
the user has finished; and what the agent said is what a listener (an STT;
the offline Whisper by default) recognises in the audio that was played.

Example (pytest; the offline stack installed)::

    pipeline = CascadingPipeline()
    async with evaluate_audio(DefaultAssistant(), pipeline) as ev:
        result = await ev.say("What time is it in Tokyo?")
        result.expect.tool_call("current_time")
        print(result.heard)  # the agent's audio, transcribed
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import ClassVar, TypeVar

from vocalis.audio import AudioFrame, concat, resample
from vocalis.evaluation.result import TurnResult
from vocalis.evaluation.run import DEFAULT_TURN_TIMEOUT, Evaluation, finish_turn, recorder_of, wait_until_idle
from vocalis.pipeline.base import Pipeline
from vocalis.providers.stt import STT
from vocalis.providers.transport import AudioSink, Transport
from vocalis.providers.tts import TTS
from vocalis.session.agent import Agent
from vocalis.session.agent_session import AgentSession
from vocalis.transports.file import TimelineAudioOutput, read_audio

__all__ = ["AudioEvaluation", "SpokenTurnsTransport", "evaluate_audio"]

_P = TypeVar("_P")

FRAME_SECONDS = 0.02
"""Microphone frames are 20 ms, as from a browser or a phone."""

MAX_TRAILING_SILENCE = 15.0
"""Seconds of silence fed after a line at most while the session decides the turn."""


class SpokenTurnsTransport(Transport):
    """A microphone that plays given audio, then silence, and a speaker that records.

    Frames are paced like a live microphone (on a virtual clock that pacing
    costs nothing). The agent's audio is kept with the times it played, so a
    turn's audio is what the user would have heard, interruptions included.
    """

    name: ClassVar[str] = "eval-audio"

    def __init__(self, *, sample_rate: int = 24_000) -> None:
        super().__init__()
        self.audio_output: TimelineAudioOutput = TimelineAudioOutput(sample_rate)
        self._sink: AudioSink | None = None

    async def start(self, sink: AudioSink) -> None:
        self._sink = sink
        self.audio_output.origin = asyncio.get_running_loop().time()

    async def play(self, frames: Sequence[AudioFrame]) -> float:
        """Feed ``frames`` in real time; returns the loop time the last one ended."""
        if self._sink is None:
            raise RuntimeError("the transport has not been started by a session")
        loop = asyncio.get_running_loop()
        start = loop.time()
        played = 0.0
        for frame in frames:
            self._sink.push_audio(frame)
            played += frame.duration
            await asyncio.sleep(max(0.0, start + played - loop.time()))
        return start + played

    async def silence_until(self, done: Callable[[], bool], *, sample_rate: int, limit: float) -> None:
        """Feed silence until ``done()`` or until ``limit`` seconds have passed."""
        frame = AudioFrame.silence(FRAME_SECONDS, sample_rate)
        fed = 0.0
        while not done() and fed < limit:
            await self.play([frame])
            fed += FRAME_SECONDS

    def heard_since(self, loop_time: float) -> AudioFrame | None:
        """The agent audio that played from ``loop_time`` on, as one frame."""
        output = self.audio_output
        since = loop_time - output.origin
        pieces = [samples for start, samples in output.pieces if start >= since - 1e-6]
        if not pieces:
            return None
        import numpy as np

        samples = np.clip(np.concatenate(pieces), -32768, 32767).astype(np.int16)
        return AudioFrame.from_numpy(samples, output.sample_rate)


def _frames(frame: AudioFrame) -> list[AudioFrame]:
    """``frame`` cut into microphone-sized frames."""
    mono = frame.to_mono()
    step = max(1, int(mono.sample_rate * FRAME_SECONDS))
    samples = mono.to_numpy()
    return [AudioFrame.from_numpy(samples[i : i + step], mono.sample_rate) for i in range(0, len(samples), step)]


class AudioEvaluation(Evaluation):
    """A running session to speak to (see :func:`evaluate_audio`).

    Attributes:
        voice: The TTS that speaks the user's lines.
        listener: The STT that transcribes the agent's audio.
        transport: The microphone and speaker of the session.
    """

    def __init__(
        self, session: AgentSession, transport: SpokenTurnsTransport, voice: TTS, listener: STT, timeout: float
    ) -> None:
        super().__init__(session, timeout)
        self.transport = transport
        self.voice = voice
        self.listener = listener

    async def say(self, text: str) -> TurnResult:
        """Speak ``text`` with the voice into the session; returns what happened."""
        chunks = [frame async for frame in self.voice.synthesize(text)]
        audio = concat(chunks)
        return await self._turn(text, [] if audio is None else _frames(audio))

    async def play(self, path: str | Path) -> TurnResult:
        """Play an audio file (anything :func:`~vocalis.transports.file.read_audio` reads) as the user's turn."""
        audio = read_audio(path)
        return await self._turn(str(path), audio.frames(FRAME_SECONDS))

    async def _turn(self, label: str, frames: list[AudioFrame]) -> TurnResult:
        if not frames:
            raise ValueError(f"no audio to play for {label!r}")
        session, recorder = self.session, recorder_of(self.session)
        loop = asyncio.get_running_loop()
        begin = loop.time()
        first = len(recorder.events)
        ended = await self.transport.play(frames)
        # A live microphone keeps sending: silence until the session has taken the turn.
        await self.transport.silence_until(
            lambda: any(event.name == "user_turn" for event in recorder.events[first:]),
            sample_rate=frames[-1].sample_rate,
            limit=min(self.timeout, MAX_TRAILING_SILENCE),
        )
        result = TurnResult(user=label, started_at=ended)
        if not await wait_until_idle(session, self.timeout):
            result.events = recorder.events[first:]
            raise TimeoutError(f"the agent did not finish answering within {self.timeout:g}s\n{result.describe()}")
        finish_turn(result, recorder, first)
        heard = self.transport.heard_since(begin)
        if heard is None:
            result.heard = ""
        else:
            event = await self.listener.recognize([resample(heard, self.listener.sample_rate)])
            result.heard = event.text.strip()
        self.turns.append(result)
        return result


@asynccontextmanager
async def evaluate_audio(
    agent: Agent,
    pipeline: Pipeline,
    *,
    voice: TTS | None = None,
    listener: STT | None = None,
    timeout: float = DEFAULT_TURN_TIMEOUT,
    record_text: bool = True,
) -> AsyncIterator[AudioEvaluation]:
    """Start a session on a recording transport and close it afterwards.

    Args:
        agent: The agent under test.
        pipeline: Its pipeline (audio in, audio out).
        voice: Speaks the user's lines (default: the pipeline's TTS).
        listener: Transcribes the agent's audio (default: the pipeline's STT).
        timeout: Loop seconds each turn may take.
        record_text: Put the turns' text into the session's metrics.

    Raises:
        ValueError: No voice or listener given and the pipeline has none to lend.
        TimeoutError: The agent's opening did not finish within ``timeout``.
    """
    voice = voice or _lent(pipeline, "tts", TTS)
    listener = listener or _lent(pipeline, "stt", STT)
    transport = SpokenTurnsTransport()
    session = AgentSession(agent, pipeline, record_text=record_text)
    recorder = recorder_of(session)
    await session.start(transport)
    try:
        evaluation = AudioEvaluation(session, transport, voice, listener, timeout)
        evaluation.opening.started_at = asyncio.get_running_loop().time()
        if not await wait_until_idle(session, timeout):
            raise TimeoutError(f"the agent's opening did not finish within {timeout:g}s")
        finish_turn(evaluation.opening, recorder, 0)
        yield evaluation
    finally:
        await session.close()


def _lent(pipeline: Pipeline, attribute: str, kind: type[_P]) -> _P:
    provider = getattr(pipeline, attribute, None)
    if not isinstance(provider, kind):
        raise ValueError(
            f"audio mode needs a {attribute.upper()} for the user's side: pass "
            f"{'voice' if attribute == 'tts' else 'listener'}= (the pipeline has none to lend)"
        )
    return provider
