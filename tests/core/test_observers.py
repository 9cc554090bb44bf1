"""Observers: metrics and traces are built from the stages the pipeline reports.

The pipeline tells the session's observers a few moments of each utterance
(:mod:`vocalis.stages`); the metrics recorder is one such observer, and an
application can add its own. Nothing is reported per token or per frame.
"""

from __future__ import annotations

import asyncio

from loguru import logger
from session_helpers import pipeline

from vocalis import Agent, function_tool
from vocalis.stages import (
    AgentAudioStarted,
    LLMFirstChunk,
    LLMRequestEnded,
    LLMRequestStarted,
    StageEvent,
    SynthesisEnded,
    SynthesisStarted,
    ToolCallFinished,
    UtteranceEnded,
    UtteranceStarted,
)
from vocalis.testing import Conversation, FakeLLM, FakeResponse, FakeSTT, FakeTTS, run_virtual


@function_tool
async def check_stock(item: str) -> str:
    """Check the stock of an item."""
    await asyncio.sleep(0.4)
    return f"{item}: 3 left"


class Collect:
    def __init__(self) -> None:
        self.events: list[StageEvent] = []

    def on_stage(self, event: StageEvent) -> None:
        self.events.append(event)


def test_an_observer_sees_each_stage_of_a_reply_with_a_tool_call_in_order() -> None:
    seen = Collect()

    async def main() -> Conversation:
        llm = FakeLLM(
            [
                FakeResponse(tool_calls=[("check_stock", '{"item": "tea"}')], ttft=0.2),
                FakeResponse("There are three left.", ttft=0.3),
            ]
        )
        p = pipeline(stt=FakeSTT(["do you have tea"]), llm=llm, tts=FakeTTS(ttfb=0.05))
        async with Conversation(Agent("Shop.", tools=[check_stock]), p) as conv:
            conv.session.add_observer(seen)
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
        return conv

    conv = run_virtual(main())
    kinds = [type(e) for e in seen.events]
    # The LLM's rounds in order, then the end; the audio's stages fall in
    # between wherever the clock puts them.
    llm_side = [k for k in kinds if k not in (SynthesisStarted, AgentAudioStarted, SynthesisEnded)]
    assert llm_side == [
        UtteranceStarted,
        LLMRequestStarted,
        LLMFirstChunk,
        LLMRequestEnded,
        ToolCallFinished,
        LLMRequestStarted,
        LLMFirstChunk,
        LLMRequestEnded,
        UtteranceEnded,
    ], kinds
    audio_side = [k for k in kinds if k in (SynthesisStarted, AgentAudioStarted, SynthesisEnded)]
    assert audio_side == [SynthesisStarted, AgentAudioStarted, SynthesisEnded], kinds
    assert kinds.index(SynthesisStarted) > kinds.index(ToolCallFinished)
    assert kinds.index(SynthesisEnded) == len(kinds) - 2
    (speech_id,) = {e.speech_id for e in seen.events}
    started = seen.events[0]
    assert isinstance(started, UtteranceStarted) and started.source == "user_turn"
    assert started.user_text == "do you have tea" and started.user_timing is not None
    tool = seen.events[4]
    assert isinstance(tool, ToolCallFinished) and tool.name == "check_stock" and abs(tool.duration - 0.4) < 1e-6
    ended = seen.events[-1]
    assert isinstance(ended, UtteranceEnded) and ended.text == "There are three left." and not ended.interrupted
    synthesis = seen.events[-2]
    assert isinstance(synthesis, SynthesisEnded) and synthesis.characters == len("There are three left.")
    # The recorder is an observer of the same stages: its record agrees.
    (m,) = conv.session.metrics
    assert m.speech_id == speech_id and len(m.llm) == 2 and m.tools[0].name == "check_stock"
    assert m.tts is not None and abs(m.tts.audio_duration - synthesis.audio_duration) < 1e-6


def test_stages_are_per_utterance_not_per_token_or_frame() -> None:
    """A reply ten times longer reports the same stages: observing costs the hot path nothing."""

    def count(text: str) -> tuple[int, int]:
        seen = Collect()

        async def main() -> None:
            p = pipeline(stt=FakeSTT([]), llm=FakeLLM([text]), tts=FakeTTS())
            async with Conversation(Agent("x"), p) as conv:
                conv.session.add_observer(seen)
                await conv.session.reply("talk")

        run_virtual(main())
        return len(seen.events), len(text.split())

    short_events, _ = count("Fine.")
    long_events, words = count(" ".join(["This sentence is long enough to be many tokens."] * 10))
    assert words > 80
    assert short_events == long_events == 8


def test_a_failing_observer_is_logged_and_the_conversation_goes_on() -> None:
    class Broken:
        def on_stage(self, event: StageEvent) -> None:
            raise RuntimeError("observer bug")

    lines: list[str] = []
    sink = logger.add(lines.append, level="ERROR", format="{message}")
    try:

        async def main() -> Conversation:
            p = pipeline(stt=FakeSTT([]), llm=FakeLLM(["One.", "Two."]), tts=FakeTTS())
            async with Conversation(Agent("x"), p) as conv:
                conv.session.add_observer(Broken())
                await conv.session.reply("first")
                await conv.session.reply("second")
            return conv

        conv = run_virtual(main())
    finally:
        logger.remove(sink)
    assert [m.agent_text is None for m in conv.session.metrics] == [True, True]  # both turns measured
    assert [t["text"] for t in conv.named("agent_turn")] == ["One.", "Two."]
    assert any("observer" in line and "UtteranceStarted" in line for line in lines)
    assert not conv.named("error")  # an observer's bug is not the conversation's error


def test_observers_are_per_session() -> None:
    first, second = Collect(), Collect()

    async def main() -> None:
        async with (
            Conversation(Agent("a"), pipeline(stt=FakeSTT([]), llm=FakeLLM(["A."]))) as a,
            Conversation(Agent("b"), pipeline(stt=FakeSTT([]), llm=FakeLLM(["B."]))) as b,
        ):
            a.session.add_observer(first)
            b.session.add_observer(second)
            await a.session.reply("go")
        await asyncio.sleep(0)

    run_virtual(main())
    assert first.events and not second.events
