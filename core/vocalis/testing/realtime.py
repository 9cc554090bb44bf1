"""A scriptable fake speech-to-speech model for :class:`RealTimePipeline` tests."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from vocalis.audio import AudioFrame
from vocalis.chat import ChatContext
from vocalis.providers.llm import ToolCallRequest, ToolSpec
from vocalis.providers.realtime import RealtimeEvent, RealtimeEventType, RealtimeModel, RealtimeSession
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis.testing.fakes import is_speech, tone

_ids = itertools.count(1)


@dataclass
class RealtimeTurn:
    """What the fake model hears and answers in one turn.

    Attributes:
        heard: The input transcript it reports for the user's speech.
        reply: The text of its spoken answer (``seconds_per_char`` of audio each).
        tool_calls: ``(name, arguments_json)`` it calls instead of answering.
    """

    heard: str = ""
    reply: str = ""
    tool_calls: list[tuple[str, str]] = field(default_factory=list)


class FakeRealtimeModel(RealtimeModel):
    """Server-VAD style fake: loud audio is speech; after ``silence`` seconds of
    quiet it reports the transcript and answers with the next scripted turn.

    Args:
        turns: Scripted turns; answers to ``create_response`` take the next one.
        silence: Quiet seconds that end the user's speech.
        seconds_per_char: Audio length per character of the reply.
        latency: Seconds from end of speech (or request) to response start.
    """

    name: ClassVar[str] = "fake"
    sample_rate: ClassVar[int] = 24_000

    class Settings(ProviderSettings):
        model_config = provider_settings_config("realtime", "fake")

    def __init__(
        self,
        turns: Sequence[RealtimeTurn] = (),
        *,
        silence: float = 0.3,
        seconds_per_char: float = 0.05,
        latency: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.turns = list(turns)
        self.silence = silence
        self.seconds_per_char = seconds_per_char
        self.latency = latency
        self.sessions: list[FakeRealtimeSession] = []

    async def connect(
        self, *, instructions: str, tools: Sequence[ToolSpec] = (), chat_ctx: ChatContext | None = None
    ) -> RealtimeSession:
        session = FakeRealtimeSession(self, instructions, [t.name for t in tools])
        self.sessions.append(session)
        return session


class FakeRealtimeSession(RealtimeSession):
    """One connection to :class:`FakeRealtimeModel`; records what it was sent."""

    def __init__(self, model: FakeRealtimeModel, instructions: str, tools: list[str]) -> None:
        super().__init__(model.label)
        self.model = model
        self.instructions = instructions
        self.tools = tools
        self.texts: list[str] = []
        self.tool_outputs: list[tuple[str, str, bool]] = []
        self.cancels: list[float | None] = []
        self.response_requests: list[str | None] = []
        self._speaking = False
        self._quiet = 0.0
        self._responding: asyncio.Task[None] | None = None
        self.start_task(self._idle())

    async def _idle(self) -> None:
        await asyncio.Event().wait()

    def push_audio(self, frame: AudioFrame) -> None:
        if is_speech(frame):
            self._quiet = 0.0
            if not self._speaking:
                self._speaking = True
                self.send(RealtimeEvent(RealtimeEventType.SPEECH_STARTED))
        elif self._speaking:
            self._quiet += frame.duration
            if self._quiet + 1e-9 >= self.model.silence:
                self._speaking = False
                self.send(RealtimeEvent(RealtimeEventType.SPEECH_STOPPED))
                turn = self._next_turn()
                if turn.heard:
                    self.send(RealtimeEvent(RealtimeEventType.INPUT_TRANSCRIPT, text=turn.heard))
                self._start_response(turn)

    def _next_turn(self) -> RealtimeTurn:
        return self.model.turns.pop(0) if self.model.turns else RealtimeTurn()

    def _start_response(self, turn: RealtimeTurn) -> None:
        self._responding = asyncio.get_running_loop().create_task(self._respond(turn))

    async def _respond(self, turn: RealtimeTurn) -> None:
        await asyncio.sleep(self.model.latency)
        response_id = f"resp_{next(_ids)}"
        self.send(RealtimeEvent(RealtimeEventType.RESPONSE_STARTED, response_id=response_id))
        if turn.tool_calls:
            calls = [ToolCallRequest(f"call_{next(_ids)}", name, args) for name, args in turn.tool_calls]
            self.send(RealtimeEvent(RealtimeEventType.FUNCTION_CALL, tool_calls=calls, response_id=response_id))
        if turn.reply:
            self.send(RealtimeEvent(RealtimeEventType.OUTPUT_TRANSCRIPT, text=turn.reply, response_id=response_id))
            audio = tone(len(turn.reply) * self.model.seconds_per_char, self.model.sample_rate, frequency=330.0)
            step = int(0.02 * self.model.sample_rate) * 2
            for start in range(0, len(audio.data), step):
                frame = AudioFrame(audio.data[start : start + step], self.model.sample_rate)
                self.send(RealtimeEvent(RealtimeEventType.AUDIO, frame=frame, response_id=response_id))
        self.send(RealtimeEvent(RealtimeEventType.RESPONSE_DONE, response_id=response_id))

    async def create_response(self, instructions: str | None = None) -> None:
        self.response_requests.append(instructions)
        self._start_response(self._next_turn())

    async def send_text(self, text: str) -> None:
        self.texts.append(text)

    async def cancel_response(self, *, played_seconds: float | None = None) -> None:
        self.cancels.append(played_seconds)
        if self._responding is not None:
            self._responding.cancel()

    async def send_tool_output(self, call_id: str, output: str, *, is_error: bool = False) -> None:
        self.tool_outputs.append((call_id, output, is_error))

    async def update_instructions(self, instructions: str) -> None:
        self.instructions = instructions

    async def aclose(self) -> None:
        if self._responding is not None:
            self._responding.cancel()
            await asyncio.gather(self._responding, return_exceptions=True)
        await super().aclose()
