"""Limits that keep a session's memory bounded, and what happens at each limit.

Chat context, tool output, concurrent tool calls, kept metrics, agent audio
queued ahead of playout (and what the TTS and a background mixer hold), and
the audio a segmented recogniser keeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pytest

from vocalis import Agent, CascadingPipeline, ToolError, function_tool
from vocalis.audio import AudioFrame
from vocalis.chat import ChatContext, ChatMessage, ChatRole, FunctionCall, FunctionCallOutput
from vocalis.observability.metrics import summarize
from vocalis.providers.adapters import SegmentedSTTStream, SentenceTTSStream
from vocalis.providers.audio_output import AudioOutput
from vocalis.providers.base import ProviderError
from vocalis.providers.stt import SpeechEvent, SpeechEventType
from vocalis.session.background import AudioClip, BackgroundAudioConfig, BackgroundMixer
from vocalis.session.limits import SessionLimits, item_chars, trim_chat_context
from vocalis.testing import (
    Conversation,
    FakeLLM,
    FakeResponse,
    FakeSTT,
    FakeTTS,
    FakeVAD,
    RecordingAudioOutput,
    run_virtual,
    tone,
)


def _conversation(
    llm: FakeLLM,
    *,
    agent: Agent | None = None,
    stt: FakeSTT | None = None,
    tts: FakeTTS | None = None,
    **session_kwargs: Any,
) -> Conversation:
    pipeline = CascadingPipeline(stt=stt or FakeSTT(), llm=llm, tts=tts or FakeTTS(), vad=FakeVAD(), turn_detector=None)
    return Conversation(agent or Agent("You are helpful."), pipeline, **session_kwargs)


def _non_instruction(ctx: ChatContext) -> list[Any]:
    return [
        i for i in ctx.items if not (isinstance(i, ChatMessage) and i.role in (ChatRole.SYSTEM, ChatRole.DEVELOPER))
    ]


# -- chat context ------------------------------------------------------------------
def _turns(ctx: ChatContext, count: int, *, with_tools: bool = False) -> None:
    for n in range(count):
        ctx.add_message("user", f"question {n}")
        if with_tools:
            ctx.add_function_call(f"c{n}a", "lookup", "{}")
            ctx.add_function_call(f"c{n}b", "lookup", "{}")
            ctx.add_function_output(f"c{n}a", "lookup", "found a")
            ctx.add_function_output(f"c{n}b", "lookup", "found b")
        ctx.add_message("assistant", f"answer {n}")


def test_trim_keeps_instructions_and_the_newest_whole_turns() -> None:
    ctx = ChatContext()
    ctx.set_instructions("Be brief.")
    _turns(ctx, 30)
    dropped = trim_chat_context(ctx, max_items=20, max_chars=None, keep=0.5)
    assert dropped == 50
    assert ctx.items[0].content == "Be brief."
    rest = _non_instruction(ctx)
    assert len(rest) == 10  # down to keep x limit, not just under it
    assert rest[0].role == ChatRole.USER and rest[0].content == "question 25"
    assert rest[-1].content == "answer 29"
    assert trim_chat_context(ctx, max_items=20, max_chars=None) == 0  # under the limit: untouched


def test_trim_by_characters_and_always_keeps_the_newest_item() -> None:
    ctx = ChatContext()
    ctx.set_instructions("x" * 10_000)  # instructions do not count
    for n in range(10):
        ctx.add_message("user", f"q{n} " + "y" * 500)
        ctx.add_message("assistant", "z" * 500)
    trim_chat_context(ctx, max_items=None, max_chars=3000, keep=1.0)
    rest = _non_instruction(ctx)
    assert sum(item_chars(i) for i in rest) <= 3000
    assert rest[0].role == ChatRole.USER and len(rest) == 4
    huge = ChatContext([ChatMessage(ChatRole.USER, "w" * 50_000)])
    trim_chat_context(huge, max_items=None, max_chars=100)
    assert len(huge) == 1  # one item over the limit is still the conversation


@pytest.mark.parametrize("limit", range(1, 14))
def test_trim_never_separates_a_tool_call_from_its_output(limit: int) -> None:
    ctx = ChatContext()
    ctx.set_instructions("Use tools.")
    _turns(ctx, 8, with_tools=True)
    trim_chat_context(ctx, max_items=limit, max_chars=None, keep=1.0)
    calls = {i.call_id for i in ctx.items if isinstance(i, FunctionCall)}
    outputs = {i.call_id for i in ctx.items if isinstance(i, FunctionCallOutput)}
    assert calls == outputs
    assert len(_non_instruction(ctx)) <= limit


def test_limits_are_validated() -> None:
    for bad in (
        {"max_context_items": 0},
        {"max_context_chars": -1},
        {"context_keep": 0.0},
        {"max_tool_output_chars": 0},
        {"max_metrics_turns": 0},
        {"max_agent_audio_ahead": 0.0},
        {"max_context_items": True},
    ):
        with pytest.raises(ValueError, match="SessionLimits"):
            SessionLimits(**bad)
    SessionLimits(max_context_items=None, max_context_chars=None, max_agent_audio_ahead=None)
    with pytest.raises(TypeError, match="SessionLimits"):
        _conversation(FakeLLM(["ok"]), limits={"max_context_items": 5})


def test_session_trims_the_context_before_each_reply() -> None:
    @function_tool
    async def lookup(query: str) -> str:
        """Look up.

        Args:
            query: What.
        """
        return "found " + query

    def script(ctx: ChatContext, tools: Sequence[Any]) -> FakeResponse | str:
        last = ctx.items[-1]
        if isinstance(last, ChatMessage) and last.role == ChatRole.USER and "tool" in last.content:
            return FakeResponse(tool_calls=[("lookup", '{"query": "a"}'), ("lookup", '{"query": "b"}')])
        return "Fine, " + "word " * 20

    limits = SessionLimits(max_context_items=12, max_context_chars=1_500, context_keep=0.5)
    llm = FakeLLM([script])

    async def main() -> Conversation:
        async with _conversation(llm, agent=Agent("Be brief.", tools=[lookup]), limits=limits) as conv:
            for n in range(40):
                await conv.session.send_text(f"tool please {n}" if n % 3 == 0 else f"chat {n}")
        return conv

    conv = run_virtual(main())
    assert len(llm.requests) > 40
    for request in llm.requests:
        items = request.chat_ctx.items
        assert items[0].content == "Be brief."
        rest = _non_instruction(request.chat_ctx)
        # The limit is applied before each reply; the reply's own user message and
        # tool round come on top of it.
        assert len(rest) <= 12 + 1 + 4
        assert sum(item_chars(i) for i in rest[:-5]) <= 1_500
        calls = {i.call_id for i in items if isinstance(i, FunctionCall)}
        outputs = {i.call_id for i in items if isinstance(i, FunctionCallOutput)}
        assert calls == outputs
    late = _non_instruction(llm.requests[-1].chat_ctx)
    assert late[0].role == ChatRole.USER  # the kept part starts on a turn
    assert conv.errors() == []


def test_default_limits_bound_a_long_conversation() -> None:
    llm = FakeLLM(["A reply of a few words."])

    async def main() -> Conversation:
        async with _conversation(llm, tts=FakeTTS(seconds_per_char=0.001)) as conv:
            for n in range(260):
                await conv.session.send_text(f"message {n}")
                llm.requests.clear()
            return conv

    conv = run_virtual(main())
    default = SessionLimits()
    assert default.max_context_items is not None
    assert len(_non_instruction(conv.session.agent.chat_context)) <= default.max_context_items + 2


# -- tool output ---------------------------------------------------------------------
def test_tool_output_and_errors_are_cut_before_the_llm_sees_them() -> None:
    @function_tool
    async def dump() -> str:
        """Return a lot."""
        return "x" * 1_000_000

    @function_tool
    async def explode() -> str:
        """Fail verbosely."""
        raise RuntimeError("y" * 1_000_000)

    @function_tool
    async def refuse() -> str:
        """Refuse verbosely."""
        raise ToolError("z" * 1_000_000)

    llm = FakeLLM(
        [
            FakeResponse(tool_calls=[("dump", "{}"), ("explode", "{}"), ("refuse", "{}")]),
            "Done.",
        ]
    )

    async def main() -> Conversation:
        agent = Agent("x", tools=[dump, explode, refuse])
        async with _conversation(llm, agent=agent, limits=SessionLimits(max_tool_output_chars=500)) as conv:
            await conv.session.send_text("go")
        return conv

    conv = run_virtual(main())
    outputs = [i for i in llm.requests[1].chat_ctx.items if isinstance(i, FunctionCallOutput)]
    assert len(outputs) == 3
    for output in outputs:
        assert len(output.output) < 600 and output.output.endswith("[output cut at 500 characters]")
    assert [o.is_error for o in outputs] == [False, True, True]
    for event in conv.named("function_call"):
        assert len(event["output"]) < 600
    # The error event names the tool; its message is the error's own (logged, not sent to the LLM).
    assert [e["source"] for e in conv.errors()] == ["tool:explode"]


# -- concurrent tool calls -------------------------------------------------------------
def _counting_tool(state: dict[str, Any], seconds: float, name: str) -> Any:
    async def work(item: str) -> str:
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        state["starts"].append((name, asyncio.get_running_loop().time()))
        try:
            await asyncio.sleep(seconds)
        finally:
            state["now"] -= 1
        return item

    work.__name__ = name
    work.__doc__ = "Work.\n\nArgs:\n    item: What.\n"
    return function_tool(work)


def test_max_parallel_tools_bounds_one_round() -> None:
    state: dict[str, Any] = {"now": 0, "max": 0, "starts": []}
    tool = _counting_tool(state, 1.0, "work")
    llm = FakeLLM([FakeResponse(tool_calls=[("work", f'{{"item": "{n}"}}') for n in range(6)]), "All done."])

    async def main() -> Conversation:
        async with _conversation(llm, agent=Agent("x", tools=[tool]), max_parallel_tools=2) as conv:
            t0 = conv.now
            await conv.session.send_text("do six things")
            assert conv.now - t0 >= 3.0  # six 1 s calls, two at a time
        return conv

    conv = run_virtual(main())
    assert state["max"] == 2
    assert len(conv.tool_calls()) == 6 and all(not error for _, _, error in conv.tool_calls())


def test_calls_left_running_by_an_interrupted_reply_hold_their_slots() -> None:
    state: dict[str, Any] = {"now": 0, "max": 0, "starts": []}
    slow = _counting_tool(state, 5.0, "slow")
    quick = _counting_tool(state, 0.1, "quick")
    llm = FakeLLM(
        [
            FakeResponse(tool_calls=[("slow", '{"item": "a"}'), ("slow", '{"item": "b"}')]),
            FakeResponse(tool_calls=[("quick", '{"item": "c"}'), ("quick", '{"item": "d"}')]),
            "Done.",
        ]
    )

    async def main() -> None:
        agent = Agent("x", tools=[slow, quick])
        async with _conversation(llm, agent=agent, max_parallel_tools=2) as conv:
            first = await conv.session.send_text("slow work", wait_for_playback=False)
            await conv.wait_for(lambda: state["now"] == 2)
            assert conv.session.interrupt()
            await first
            await conv.session.send_text("quick work")
            await conv.wait_for(lambda: len(conv.tool_calls()) == 4)

    run_virtual(main())
    assert state["max"] == 2
    slow_starts = [t for name, t in state["starts"] if name == "slow"]
    quick_starts = [t for name, t in state["starts"] if name == "quick"]
    assert min(quick_starts) >= max(slow_starts) + 5.0 - 1e-6  # they waited for the slots


# -- metrics -------------------------------------------------------------------------------
def test_metrics_keep_the_newest_turns_and_an_exact_summary() -> None:
    collected: list[Any] = []
    llm = FakeLLM([FakeResponse("Sure thing.", ttft=0.2)])

    async def main() -> Conversation:
        stt = FakeSTT()
        async with _conversation(llm, stt=stt, limits=SessionLimits(max_metrics_turns=3)) as conv:
            conv.session.on("metrics_collected", lambda e: collected.append(e["metrics"]))
            for n in range(8):
                stt.transcripts.append(f"voice turn {n}")
                await conv.user_speaks(0.4 + 0.1 * n)
                await conv.wait_for_agent_turn()
                await conv.silence(0.5)
        return conv

    conv = run_virtual(main())
    kept = conv.session.metrics
    assert [m.turn for m in kept] == [6, 7, 8]
    assert len(collected) == 8 and [m.turn for m in collected] == list(range(1, 9))
    summary = conv.named("close")[0]["summary"]
    expected = summarize(conv.session.id, summary.duration, collected, conv.session.recorder.counts)
    assert summary == expected
    assert summary.turns == 8 and summary.e2e_p50 is not None


# -- agent audio -------------------------------------------------------------------------------
def _ahead_profile(max_ahead: float | None) -> tuple[float, float, RecordingAudioOutput]:
    """Speak 30 s of audio; return (most audio delivered ahead of playout, kept frames' seconds mid-way)."""
    text = "This is a very long answer that goes on. " * 15  # ~600 chars -> ~30 s at 0.05 s/char
    kept_midway: list[float] = []

    async def main() -> RecordingAudioOutput:
        async with _conversation(FakeLLM(["ok"]), limits=SessionLimits(max_agent_audio_ahead=max_ahead)) as conv:
            output = conv.transport.audio_output
            handle = await conv.session.say(text)
            await conv.silence(15.0)
            kept_midway.append(sum(f.duration for f in output._frames))
            await conv.wait_for_speech(handle)
            return output

    output = run_virtual(main())
    start = output.frames[0].time
    delivered, ahead = 0.0, 0.0
    for played in output.frames:
        delivered += played.frame.duration
        ahead = max(ahead, delivered - (played.time - start))
    return ahead, kept_midway[0], output


def test_agent_audio_is_never_queued_far_ahead_of_playout() -> None:
    ahead, kept, output = _ahead_profile(2.0)
    assert ahead <= 2.0 + 0.02 + 1e-6  # the limit plus one frame
    assert kept <= 2.0 + 0.05  # heard frames were let go
    assert sum(f.frame.duration for f in output.frames) > 25.0  # all of it still played
    unbounded, _, _ = _ahead_profile(None)
    assert unbounded > 20.0  # without the limit the whole reply is queued at once


def test_pause_and_resume_replay_from_the_heard_position_after_pruning() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        output = RecordingAudioOutput()
        piece = tone(0.1, 16_000)
        for _ in range(50):  # 5 s
            await output.capture_frame(piece)
        output.flush()
        await asyncio.sleep(3.0)
        await output.capture_frame(piece)  # a late frame makes it let go of what was heard
        assert sum(f.duration for f in output._frames) <= 2.2 + 1e-6  # not the 3 s heard
        assert output.pause() == pytest.approx(3.0)
        await asyncio.sleep(10.0)  # paused: nothing plays
        before = len(output.frames)
        output.resume()
        replayed = sum(played.frame.duration for played in output.frames[before:])
        assert replayed == pytest.approx(2.1, abs=1e-6)  # the rest of the 5.1 s segment
        t0 = loop.time()
        result = await output.wait_for_playout()
        assert not result.interrupted and loop.time() - t0 == pytest.approx(2.1, abs=1e-6)

    run_virtual(main())


def test_a_segment_cleared_while_waiting_for_room_drops_the_waiting_frame() -> None:
    async def main() -> None:
        output = RecordingAudioOutput()
        output.max_ahead = 1.0
        piece = tone(0.5, 16_000)
        for _ in range(3):
            await output.capture_frame(piece)
        waiting = asyncio.ensure_future(output.capture_frame(piece))
        await asyncio.sleep(0.1)
        assert not waiting.done()  # 1.5 s queued ahead: it waits
        output.clear_buffer()
        await waiting
        assert not output.speaking  # the frame of the cut segment did not start a new one
        assert len(output.frames) == 3

    run_virtual(main())


def test_a_frame_never_waits_long_enough_to_look_like_a_stuck_transport() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        output = RecordingAudioOutput()
        output.max_ahead = 1.0
        big = tone(4.0, 16_000)  # a TTS that yields whole sentences
        for _ in range(4):
            started = loop.time()
            await output.capture_frame(big)
            assert loop.time() - started <= 2.0 + 0.002  # inside ProviderTimeouts.audio_output (5 s)

    run_virtual(main())


def test_background_audio_does_not_accumulate_in_the_transport_output() -> None:
    async def main() -> int:
        inner = AudioOutput()
        clip = AudioClip(np.zeros(24_000, dtype=np.float32), 24_000)
        mixer = BackgroundMixer(inner, BackgroundAudioConfig(ambient=clip))
        mixer.start()
        await asyncio.sleep(600.0)  # ten minutes of a never-ending segment
        kept = len(inner._frames)
        await mixer.aclose()
        return kept

    assert run_virtual(main()) <= 2


def test_tts_stream_pauses_when_nobody_reads() -> None:
    class Endless(FakeTTS):
        made = 0

        async def synthesize(self, text: str) -> Any:
            for _ in range(10_000):
                Endless.made += 1
                yield self._frame

    async def main() -> None:
        stream = SentenceTTSStream(Endless(), max_pending=50)
        stream.push_text("Say this, please.")
        stream.end_input()
        await asyncio.sleep(1.0)
        assert stream._queue.qsize() <= 50 and Endless.made <= 52
        read = [audio async for audio in stream]  # reading lets it finish
        assert len(read) == 10_000
        await stream.aclose()

    run_virtual(main())


# -- user audio in a segmented recogniser ----------------------------------------------------------
class _RecordingSTT(FakeSTT):
    """Non-streaming; records how much audio each final recognition got."""

    name: ClassVar[str] = "fake"

    def __init__(self, transcripts: list[str], **kwargs: Any) -> None:
        super().__init__(transcripts, streaming=False, **kwargs)
        self.segment_seconds: list[float] = []

    async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        self.segment_seconds.append(sum(f.duration for f in frames))
        return await super().recognize(frames, language=language)


def test_a_monologue_is_recognised_in_pieces_of_max_segment() -> None:
    stt = _RecordingSTT(["part one", "part two", "part three"])
    llm = FakeLLM(["I heard all of it."])

    async def main() -> Conversation:
        from vocalis.pipeline.config import EOUConfig

        pipeline = CascadingPipeline(
            stt=stt, llm=llm, tts=FakeTTS(), vad=FakeVAD(), turn_detector=None, eou_config=EOUConfig(speculative_stt=0)
        )
        async with Conversation(Agent("x"), pipeline) as conv:
            await conv.user_speaks(130.0)
            await conv.wait_for_agent_turn()
        return conv

    conv = run_virtual(main())
    assert len(stt.segment_seconds) == 3
    assert all(seconds <= 60.0 + 0.3 + 1e-6 for seconds in stt.segment_seconds)  # limit (+ pre-roll)
    assert sum(stt.segment_seconds) == pytest.approx(130.0, abs=0.5)  # nothing lost
    assert conv.user_turns() == ["part one part two part three"]


def test_a_recogniser_that_falls_behind_fails_the_stream_past_max_backlog() -> None:
    class Stuck(FakeSTT):
        async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
            await asyncio.sleep(3600)
            return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, "late")

    async def main() -> None:
        stream = SegmentedSTTStream(Stuck(streaming=False), interim_interval=0, max_segment=10.0, max_backlog=25.0)
        speech = tone(0.5, 16_000)
        stream.start_segment()
        with pytest.raises(ProviderError, match="falling behind") as caught:
            for _ in range(200):  # 100 s of speech, pushed faster than real time
                stream.push_frame(speech)
                await asyncio.sleep(0)
            async for _ in stream:
                pass
        assert caught.value.provider == "stt:fake" and caught.value.recoverable
        assert not stream._jobs  # the queued audio was let go
        await stream.aclose()

    run_virtual(main())
