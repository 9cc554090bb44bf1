"""Nothing the user says is lost: every final reaches the chat context once, in order.

Virtual-time conversations of several sentences with short pauses, recognised
by slow recognisers whose finals arrive after the next sentence has begun
(the causes A-E of the lost sentences, each with its own test).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from session_helpers import pipeline

from vocalis import Agent
from vocalis.audio import AudioFrame
from vocalis.chat import ChatRole
from vocalis.pipeline.config import EOUConfig, InterruptConfig
from vocalis.providers.adapters import SegmentedSTTStream
from vocalis.providers.stt import STT, SpeechEvent, SpeechEventType
from vocalis.testing import Conversation, FakeLLM, FakeSTT, FakeTTS, run_virtual

SENTENCES = [
    "what's the weather like in boston",
    "can you book a table for two",
    "what time is it in tokyo",
    "please set a timer",
    "how much is twenty three plus forty two",
    "remind me to call my mother",
]
PAUSES = [0.5, 1.2, 0.7, 1.5, 0.9]


def user_messages(conv: Conversation) -> list[str]:
    return [m.content for m in conv.session.agent.chat_context.messages() if m.role is ChatRole.USER]


def assert_every_sentence_once_in_order(conv: Conversation, sentences: Sequence[str]) -> None:
    said = " ".join(user_messages(conv)).split()
    assert said == " ".join(sentences).split(), user_messages(conv)
    assert " ".join(conv.user_turns()).split() == said


async def speak_sentences(conv: Conversation, seconds: float = 1.0) -> None:
    for index, _ in enumerate(SENTENCES):
        await conv.user_speaks(seconds)
        if index < len(PAUSES):
            await conv.silence(PAUSES[index])


@pytest.mark.parametrize("final_delay", [0.2, 1.0, 1.8, 3.0])
@pytest.mark.parametrize("streaming", [True, False])
def test_a_slow_recogniser_loses_no_sentence(final_delay: float, streaming: bool) -> None:
    # Cause A: the turn was committed with sentence N while N+1's final was
    # still owed; that final was then dropped as stale.
    async def main() -> None:
        stt = FakeSTT(SENTENCES, final_delay=final_delay, streaming=streaming)
        llm = FakeLLM(["Sure."] * 12)
        config = EOUConfig(speculative_stt=0)
        async with Conversation(Agent("Be brief."), pipeline(stt=stt, llm=llm, eou_config=config)) as conv:
            await speak_sentences(conv)
            await conv.wait_for(lambda: not conv.session.busy, timeout=30)
        assert_every_sentence_once_in_order(conv, SENTENCES)
        # Every request the LLM received carried all the words said before it.
        last = llm.requests[-1]
        asked = " ".join(m.content for m in last.chat_ctx.messages(ChatRole.USER)).split()
        assert asked == " ".join(SENTENCES).split()

    run_virtual(main())


def test_b_a_final_later_than_stt_timeout_is_still_answered_and_keeps_the_session_busy() -> None:
    # Cause B: the end of turn gave up after stt_timeout with no words and
    # nothing counted the owed final, so the caller closed the session.
    async def main() -> None:
        stt = FakeSTT(["turn off the lights"], final_delay=4.0)
        config = EOUConfig(stt_timeout=1.0)
        async with Conversation(Agent("Be brief."), pipeline(stt=stt, responses=["Done."], eou_config=config)) as conv:
            await conv.user_speaks(1.0)
            busy_samples = []
            for _ in range(150):  # 3 s, while the final is owed
                busy_samples.append(conv.session.busy)
                await conv.silence(0.02)
            assert all(busy_samples)
            await conv.wait_for(lambda: not conv.session.busy, timeout=30)
        assert conv.user_turns() == ["turn off the lights"]
        assert conv.agent_turns() == ["Done."]

    run_virtual(main())


def test_c_a_queued_unanswered_turn_joins_the_next_one() -> None:
    # Cause C: a committed turn queued behind agent speech was discarded when
    # the next turn came, so its words never reached the LLM.
    async def main() -> None:
        stt = FakeSTT(["first question", "second question"], final_delay=0.1)
        llm = FakeLLM(["Answer."])
        conv = Conversation(Agent("Be brief."), pipeline(stt=stt, llm=llm))
        async with conv:
            handle = await conv.session.say("A long announcement " * 8, interruptible=False)
            await conv.user_speaks(1.0, then_silence=1.5)
            await conv.user_speaks(1.0, then_silence=1.5)
            assert not handle.done()
            await conv.wait_for(lambda: not conv.session.busy, timeout=60)
        assert conv.user_turns() == ["first question second question"]
        assert user_messages(conv) == ["first question second question"]
        assert len(llm.requests) == 1

    run_virtual(main())


def test_d_a_turn_taken_from_an_interim_gets_the_rest_of_its_final() -> None:
    # Cause D: after stt_timeout the turn was taken from the interim and the
    # late final dropped whole, losing the words after the interim.
    async def main() -> None:
        stt = FakeSTT(["book a table for two please"], word_seconds=0.3, final_delay=5.0)
        config = EOUConfig(stt_timeout=1.0)
        llm = FakeLLM(["Which day?", "Booked."])
        async with Conversation(Agent("Be brief."), pipeline(stt=stt, llm=llm, eou_config=config)) as conv:
            await conv.user_speaks(0.7)  # the interim shows "book a"
            await conv.wait_for(lambda: not conv.session.busy, timeout=30)
        assert conv.user_turns() == ["book a", "table for two please"]
        assert user_messages(conv) == ["book a", "table for two please"]

    run_virtual(main())


def test_d_a_revised_final_is_kept_whole_rather_than_losing_words() -> None:
    from vocalis.pipeline.turn_taking.segments import _untaken

    assert _untaken("Book a table for two.", ["book", "a"]) == "table for two."
    assert _untaken("Book a table.", ["book", "a", "table"]) == ""
    assert _untaken("so book a table", ["book", "a"]) == "table"
    # A final that revises the interim's words is aligned with them, not repeated.
    assert _untaken("Look at the menu", ["book", "a"]) == "the menu"
    taken = "and the details to John.mit them.".split()
    assert _untaken("Send the details to jon.mit at enlampal.com", taken) == "enlampal.com"
    # A final that has nothing in common with the interim is kept whole.
    assert _untaken("What a lovely day", "turn off the lights".split()) == "What a lovely day"


class _LevelSTT(STT):
    """Non-streaming recogniser that hears a segment's loudness as its words."""

    name = "level"
    streaming = False

    def __init__(self, release: asyncio.Event) -> None:
        super().__init__()
        self.release = release

    async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        await self.release.wait()  # the first final holds the worker
        return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, _level(frames))

    async def recognize_interim(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        return SpeechEvent(SpeechEventType.INTERIM_TRANSCRIPT, _level(frames))


def _level(frames: Sequence[AudioFrame]) -> str:
    loudest = max((max(abs(s) for s in f.to_numpy()) for f in frames), default=0)
    return f"segment {int(round(loudest / 1000))}"


def test_e_an_interim_is_emitted_only_for_the_segment_it_was_taken_from() -> None:
    # Cause E: an interim job checked staleness against the segment current
    # when it ran, so segment N's interim came out as segment N+1's words.
    import numpy as np

    def frame(level: int) -> AudioFrame:
        return AudioFrame(np.full(320, level * 1000, dtype=np.int16).tobytes(), 16_000)

    async def main() -> list[tuple[str, str]]:
        release = asyncio.Event()
        stream = SegmentedSTTStream(_LevelSTT(release), interim_interval=0.1, preroll=0.0)
        seen: list[tuple[str, str]] = []

        async def read() -> None:
            async for event in stream:
                seen.append((event.type.value, event.text))

        reader = asyncio.get_running_loop().create_task(read())
        stream.start_segment()
        for _ in range(5):
            stream.push_frame(frame(1))
        stream.flush()  # segment 1's final holds the worker (recognize waits)
        await asyncio.sleep(0)
        stream.start_segment()
        for _ in range(10):
            stream.push_frame(frame(2))  # an interim job for segment 2 queues
        stream.speculate()
        stream.flush(use_speculation=True)  # ends segment 2 without a queued final
        stream.start_segment()
        stream.push_frame(frame(3))
        release.set()
        await asyncio.sleep(0.5)
        stream.flush()
        stream.end_input()
        await asyncio.wait_for(reader, 5)
        await stream.aclose()
        return seen

    seen = run_virtual(main())
    interims = [text for kind, text in seen if kind == SpeechEventType.INTERIM_TRANSCRIPT.value]
    assert "segment 2" not in interims, seen
    finals = [text for kind, text in seen if kind == SpeechEventType.FINAL_TRANSCRIPT.value]
    assert finals == ["segment 1", "segment 2", "segment 3"], seen


def test_words_said_while_the_agent_speaks_reach_the_context() -> None:
    # Sentences said over the agent: either they interrupt it (and become the
    # next turn), or they wait for it; in both cases nothing is lost.
    async def main() -> None:
        stt = FakeSTT(SENTENCES[:3], final_delay=0.8)
        llm = FakeLLM(["This is a long answer that takes a while to say out loud."] * 6)
        interrupt = InterruptConfig(min_words=3)
        async with Conversation(Agent("Be brief."), pipeline(stt=stt, llm=llm, interrupt_config=interrupt)) as conv:
            await conv.user_speaks(1.0, then_silence=1.6)
            await conv.user_speaks(1.0, then_silence=0.4)
            await conv.user_speaks(1.0)
            await conv.wait_for(lambda: not conv.session.busy, timeout=60)
        assert_every_sentence_once_in_order(conv, SENTENCES[:3])

    run_virtual(main())


def test_busy_is_false_once_everything_was_answered() -> None:
    async def main() -> None:
        async with Conversation(Agent("Be brief."), pipeline(["hello there"], ["Hi!"])) as conv:
            assert not conv.session.busy
            await conv.user_speaks(1.0)
            assert conv.session.busy
            await conv.wait_for(lambda: not conv.session.busy, timeout=30)
            assert conv.agent_turns() == ["Hi!"]

    run_virtual(main())


def test_fake_tts_is_used() -> None:
    # The pipeline of these tests speaks through the fake TTS (no real audio).
    assert isinstance(pipeline().tts, FakeTTS)


def test_every_llm_request_is_valid_after_a_barge_in_during_a_slow_tool() -> None:
    # The next turn's request used to carry the function call followed by a
    # user message with no output between them: OpenAI and Anthropic reject it.
    from vocalis import function_tool
    from vocalis.chat import PENDING_TOOL_OUTPUT, FunctionCall, FunctionCallOutput, request_problems
    from vocalis.testing import FakeResponse

    @function_tool
    async def slow_search(query: str) -> str:
        """Search slowly."""
        await asyncio.sleep(3.0)
        return "found it"

    async def main() -> None:
        llm = FakeLLM(
            [
                FakeResponse("Let me search.", tool_calls=[("slow_search", '{"query": "x"}')]),
                "Sure, what else?",
                "The search found it.",
            ]
        )
        agent = Agent("x", tools=[slow_search])
        async with Conversation(agent, pipeline(stt=FakeSTT(["actually wait", "and the result"]), llm=llm)) as conv:
            await conv.session.reply("search", wait_for_playback=False)
            await conv.silence(0.5)
            await conv.user_speaks(1.2)  # barge in while the tool runs
            await conv.wait_for_agent_turn(2)
            await conv.silence(4.0)  # the tool finishes
            await conv.user_speaks(1.0)
            await conv.wait_for(lambda: not conv.session.busy, timeout=30)
        assert llm.invalid_requests == []
        assert conv.errors() == []
        # The request sent while the tool ran said so, in the call's own batch.
        during = llm.requests[1].chat_ctx
        assert request_problems(during) == []
        outputs = [i.output for i in during.items if isinstance(i, FunctionCallOutput)]
        assert outputs == [PENDING_TOOL_OUTPUT]
        # The real output was recorded once, answering its call, and the next
        # request carried it.
        items = conv.session.agent.chat_context.items
        assert sum(isinstance(i, FunctionCall) for i in items) == 1
        assert [i.output for i in items if isinstance(i, FunctionCallOutput)] == ["found it"]
        assert request_problems(conv.session.agent.chat_context) == []
        last = [i.output for i in llm.requests[-1].chat_ctx.items if isinstance(i, FunctionCallOutput)]
        assert last == ["found it"]

    run_virtual(main())


def test_the_request_validator_names_what_the_providers_would_reject() -> None:
    from vocalis.chat import ChatContext, ChatRole, request_problems

    ctx = ChatContext()
    ctx.add_message(ChatRole.USER, "hi")
    ctx.add_function_call("c1", "search", "{}")
    ctx.add_message(ChatRole.USER, "hello?")
    assert request_problems(ctx) == ["item 2: a user message before the output of search (c1)"]
    ctx.add_function_output("c1", "search", "found")  # lands right after its call
    assert request_problems(ctx) == []
    assert [type(i).__name__ for i in ctx.items] == ["ChatMessage", "FunctionCall", "FunctionCallOutput", "ChatMessage"]
    ctx.items.append(ctx.items[2])
    assert request_problems(ctx) == ["item 4: a second output for call 'c1'"]
