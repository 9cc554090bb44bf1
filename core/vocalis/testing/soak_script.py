"""The scripted world the soak test plays: a restaurant receptionist on the fakes.

Every kind of turn a live worker sees, on providers shared by all sessions
(as a worker process holds them): voice turns through the fake VAD and STT,
typed turns, a tool call, a tool that raises, a tool that times out, an LLM
that fails mid-stream, a barge-in, ``say``. Every third session also plays
background audio. :mod:`vocalis.testing.soak` drives it and measures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np

from vocalis.chat import ChatContext, FunctionCallOutput
from vocalis.pipeline.cascading import CascadingPipeline
from vocalis.providers.llm import ToolSpec
from vocalis.session.agent import Agent
from vocalis.session.background import AudioClip, BackgroundAudioConfig
from vocalis.states import AgentState
from vocalis.testing.conversation import Conversation
from vocalis.testing.fakes import FakeLLM, FakeResponse, FakeSTT, FakeTTS, FakeVAD
from vocalis.tools.function import function_tool

__all__ = ["SESSION_LENGTHS", "TURN_KINDS", "SoakWorld", "play_turn"]

TURN_KINDS: tuple[str, ...] = (
    "voice",
    "typed",
    "tool",
    "voice",
    "barge_in",
    "typed",
    "tool_error",
    "voice",
    "say",
    "tool_timeout",
    "typed",
    "llm_error",
)
"""The scripted turns, played in this order over and over."""

SESSION_LENGTHS: tuple[int, ...] = (3, 12, 7, 40, 5, 20)
"""Turns per session, cycled: short calls and long ones, as a worker sees them."""

_STORY = " ".join(f"Part {n} of the story goes on for a while so that the user can talk over it." for n in range(1, 6))


@function_tool
async def get_weather(city: str) -> str:
    """Get the weather.

    Args:
        city: City name.
    """
    await asyncio.sleep(0.05)
    return f"sunny and 21 degrees in {city}"


@function_tool
async def book_table(guests: int) -> str:
    """Book a table (always fails: the restaurant's system is down).

    Args:
        guests: Number of guests.
    """
    raise RuntimeError("booking system unavailable")


@function_tool
async def slow_lookup(query: str) -> str:
    """A lookup that never answers in time.

    Args:
        query: What to look up.
    """
    await asyncio.sleep(3600)
    return query


def _llm_script(chat_ctx: ChatContext, tools: Sequence[ToolSpec]) -> FakeResponse | str:
    """Answers by the last item: tool results get a summary, user words pick a path."""
    last = chat_ctx.items[-1] if chat_ctx.items else None
    if isinstance(last, FunctionCallOutput):
        return "Sorry, that did not work." if last.is_error else "Here is what I found for you."
    text = getattr(last, "content", "").lower()
    if "weather" in text:
        return FakeResponse(tool_calls=[("get_weather", '{"city": "Paris"}')], ttft=0.1)
    if "book" in text:
        return FakeResponse(tool_calls=[("book_table", '{"guests": 2}')], ttft=0.1)
    if "look up" in text:
        return FakeResponse(tool_calls=[("slow_lookup", '{"query": "anything"}')], ttft=0.1)
    if "story" in text:
        return FakeResponse(_STORY, ttft=0.1)
    if "fail" in text:
        return FakeResponse("Let me think", ttft=0.1, error=RuntimeError("connection reset mid-stream"))
    return FakeResponse("Sure, happy to help with that.", ttft=0.1)


class SoakWorld:
    """Providers shared by every session, and the factory of sessions."""

    def __init__(self) -> None:
        self.llm = FakeLLM([_llm_script])
        self.stt = FakeSTT(final_delay=0.1)
        self.tts = FakeTTS(seconds_per_char=0.02)
        self.vad = FakeVAD()
        self.ambient = AudioClip((0.05 * np.sin(np.arange(24_000) * 0.02)).astype(np.float32), 24_000)
        self.opened = 0

    def new_conversation(self, **session_kwargs: Any) -> Conversation:
        """A fresh agent and pipeline on the shared providers (not started)."""
        self.opened += 1
        agent = Agent(
            "You are the receptionist of a small restaurant. Be brief.",
            tools=[get_weather, book_table, slow_lookup],
        )
        pipeline = CascadingPipeline(stt=self.stt, llm=self.llm, tts=self.tts, vad=self.vad, turn_detector=None)
        options: dict[str, Any] = {"tool_timeout": 2.0}
        if self.opened % 3 == 0:
            options["background_audio"] = BackgroundAudioConfig(ambient=self.ambient)
        options.update(session_kwargs)
        return Conversation(agent, pipeline, **options)

    def forget(self, conv: Conversation) -> None:
        """Drop what the fakes and the driver record for assertions (the library keeps none of it)."""
        conv.events.clear()
        conv.transport.audio_output.frames.clear()
        conv.transport.audio_output.clears.clear()
        conv.transport.events.clear()
        self.llm.requests.clear()
        self.stt.recognized.clear()
        self.tts.spoken.clear()

    def end_session(self) -> None:
        """Transcripts a closed session did not use are not the next one's."""
        self.stt.transcripts.clear()


async def play_turn(kind: str, conv: Conversation, world: SoakWorld) -> None:
    """Play one scripted turn of ``kind`` (one of :data:`TURN_KINDS`) to its end."""
    session = conv.session
    if kind in ("voice", "tool"):
        world.stt.transcripts.append("what is the weather in paris" if kind == "tool" else "what time do you open")
        await conv.user_speaks(0.8 if kind == "tool" else 0.6)
        await conv.wait_for_agent_turn()
    elif kind == "typed":
        await session.send_text("thanks, and on sundays?")
    elif kind == "tool_error":
        await session.send_text("book a table for two")
    elif kind == "tool_timeout":
        await session.send_text("please look up my order")
    elif kind == "llm_error":
        await session.send_text("this one will fail")
    elif kind == "say":
        await session.say("Just a moment, please.", wait_for_playback=True)
    elif kind == "barge_in":
        reply = await session.send_text("tell me a long story", wait_for_playback=False)
        await conv.wait_for(lambda: session.agent_state == AgentState.SPEAKING)
        await conv.silence(0.5)
        world.stt.transcripts.append("stop now please")
        await conv.user_speaks(1.0)
        await conv.wait_for(reply.done)
        await conv.wait_for_agent_turn()
    else:
        raise ValueError(f"unknown turn kind {kind!r}")
    # Drain the tail of the turn (playout, the VAD's hang-over) like a live microphone.
    await conv.wait_for(lambda: session.agent_state in (AgentState.IDLE, AgentState.LISTENING))
    await conv.silence(0.4)
