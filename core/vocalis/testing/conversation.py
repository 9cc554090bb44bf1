"""Drive a scripted conversation and assert on what happened.

Example (virtual time: the 10 s conversation runs in milliseconds)::

    from vocalis.testing import Conversation, FakeLLM, FakeSTT, FakeTTS, FakeVAD, run_virtual

    async def main():
        pipeline = CascadingPipeline(stt=FakeSTT(["hi there"]), llm=FakeLLM(["Hello!"]),
                                     tts=FakeTTS(), vad=FakeVAD())
        async with Conversation(Agent("Be brief."), pipeline) as conv:
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
        assert conv.agent_turns() == ["Hello!"]

    run_virtual(main())
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vocalis.audio import AudioFrame
from vocalis.pipeline.base import Pipeline
from vocalis.session.agent import Agent
from vocalis.session.agent_session import AgentSession
from vocalis.session.flow import ConversationFlow
from vocalis.testing.fakes import FakeTransport, tone


@dataclass(slots=True)
class RecordedEvent:
    """A session event with the loop time it was emitted at."""

    time: float
    name: str
    payload: Any


class Conversation:
    """Runs an :class:`AgentSession` over a :class:`FakeTransport` and records it.

    User audio is pushed in real-time-sized frames on the loop's clock, so
    under :func:`vocalis.testing.run_virtual` timing is exact and instant.

    Args:
        agent: The agent.
        pipeline: The pipeline (usually with fake providers).
        conversation_flow: Optional flow.
        frame_seconds: Size of the user audio frames pushed.
        sample_rate: Rate of the user audio pushed.
        **session_kwargs: Passed to :class:`AgentSession`.
    """

    def __init__(
        self,
        agent: Agent,
        pipeline: Pipeline,
        conversation_flow: ConversationFlow | None = None,
        *,
        frame_seconds: float = 0.02,
        sample_rate: int = 16_000,
        **session_kwargs: Any,
    ) -> None:
        self.session = AgentSession(agent, pipeline, conversation_flow, **session_kwargs)
        self.transport = FakeTransport()
        self.frame_seconds = frame_seconds
        self.sample_rate = sample_rate
        self.events: list[RecordedEvent] = []
        self.session.on_any(self._record)
        self._speech = tone(frame_seconds, sample_rate)
        self._silence = AudioFrame.silence(frame_seconds, sample_rate)

    def _record(self, name: str, args: tuple[Any, ...]) -> None:
        self.events.append(RecordedEvent(self.now, name, args[0] if args else None))

    @property
    def now(self) -> float:
        """The loop's clock."""
        return asyncio.get_running_loop().time()

    async def __aenter__(self) -> Conversation:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the session on the fake transport."""
        await self.session.start(self.transport)

    async def close(self) -> None:
        """Close the session."""
        await self.session.close()

    # -- driving -----------------------------------------------------------
    async def _push(self, frame: AudioFrame, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        count = max(1, round(seconds / self.frame_seconds))
        start = loop.time()
        for index in range(count):
            self.transport.push(frame)
            # Pace against the start time so rounding never drifts.
            delay = start + (index + 1) * self.frame_seconds - loop.time()
            await asyncio.sleep(max(0.0, delay))

    async def user_speaks(self, seconds: float, *, then_silence: float = 0.0) -> None:
        """Push ``seconds`` of speech-like audio, then optional silence."""
        await self._push(self._speech, seconds)
        if then_silence:
            await self.silence(then_silence)

    async def silence(self, seconds: float) -> None:
        """Push ``seconds`` of silent audio (a live microphone never stops)."""
        await self._push(self._silence, seconds)

    async def push(self, frame: AudioFrame) -> None:
        """Push one arbitrary frame (bad input tests)."""
        self.transport.push(frame)

    async def wait_for(
        self, predicate: Callable[[], bool], *, timeout: float = 30.0, keep_listening: bool = True
    ) -> None:
        """Wait (pushing silence, like a live microphone) until ``predicate()``.

        Raises:
            TimeoutError: Not true within ``timeout`` seconds of loop time.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() >= deadline:
                recent = ", ".join(f"{t:.2f} {name}" for t, name in self.timeline()[-12:])
                raise TimeoutError(
                    f"condition not met within {timeout} s (agent {self.session.agent_state.value}, "
                    f"{len(self.named('user_turn'))} user turns, {len(self.named('agent_turn'))} agent "
                    f"turns; last events: {recent or 'none'})"
                )
            if keep_listening:
                await self.silence(self.frame_seconds)
            else:
                await asyncio.sleep(self.frame_seconds)

    async def wait_for_agent_turn(self, count: int | None = None, *, timeout: float = 30.0) -> None:
        """Wait until ``count`` agent turns are complete (default: one more)."""
        target = count if count is not None else len(self.named("agent_turn")) + 1
        await self.wait_for(lambda: len(self.named("agent_turn")) >= target, timeout=timeout)

    async def wait_for_speech(self, handle: Any, *, timeout: float = 60.0) -> None:
        """Wait (pushing silence) until a ``say``/``reply`` handle is done."""
        await self.wait_for(handle.done, timeout=timeout)

    async def wait_for_state(self, state: str, *, timeout: float = 30.0) -> None:
        """Wait until the agent is in ``state``."""
        await self.wait_for(lambda: self.session.agent_state == state, timeout=timeout)

    # -- inspecting ----------------------------------------------------------
    def named(self, name: str) -> list[Any]:
        """Payloads of every event called ``name``, in order."""
        return [event.payload for event in self.events if event.name == name]

    def agent_states(self) -> list[str]:
        """The agent's states in the order they were entered."""
        return [str(p["state"]) for p in self.named("agent_state_changed")]

    def user_states(self) -> list[str]:
        """The user's states in the order they were entered."""
        return [str(p["state"]) for p in self.named("user_state_changed")]

    def user_turns(self) -> list[str]:
        """Committed user turns."""
        return [p["text"] for p in self.named("user_turn")]

    def agent_turns(self) -> list[str]:
        """What the agent said in each turn (cut to what was heard)."""
        return [p["text"] for p in self.named("agent_turn")]

    def tool_calls(self) -> list[tuple[str, str, bool]]:
        """``(name, output, is_error)`` of each tool call, in completion order."""
        return [(p["name"], p["output"], p["is_error"]) for p in self.named("function_call")]

    def errors(self) -> list[dict[str, Any]]:
        """Every ``error`` event payload."""
        return self.named("error")

    def agent_audio_seconds(self) -> float:
        """Seconds of agent audio delivered to the transport."""
        return sum(played.frame.duration for played in self.transport.audio_output.frames)

    def timeline(self) -> list[tuple[float, str]]:
        """``(time, name)`` for every event: handy in failure messages."""
        return [(round(e.time, 3), e.name) for e in self.events]
