"""The expectation API: each check passes and fails, with a readable message."""

from __future__ import annotations

import pytest

from vocalis.evaluation import LLMJudge, TurnEvent, TurnResult, Verdict, arguments_match, evaluate
from vocalis.evaluation.judge import parse_yes_no
from vocalis.pipeline.cascading import CascadingPipeline
from vocalis.session.agent import Agent
from vocalis.session.assistant import DefaultAssistant
from vocalis.testing import FakeLLM, FakeResponse, FakeSTT, FakeTTS, FakeVAD, run_virtual


def fakes(llm: FakeLLM) -> CascadingPipeline:
    return CascadingPipeline(stt=FakeSTT([]), llm=llm, tts=FakeTTS(), vad=FakeVAD(), turn_detector=None)


def calculator_pipeline() -> CascadingPipeline:
    llm = FakeLLM(
        [FakeResponse(tool_calls=[("calculate", '{"expression": "17 * 23"}')]), FakeResponse("It is 391.", ttft=0.4)]
    )
    return fakes(llm)


def test_tool_call_reply_latency_and_interruption_checks() -> None:
    async def main() -> None:
        async with evaluate(DefaultAssistant(), calculator_pipeline()) as ev:
            result = await ev.say("What is 17 times 23?")
        call = result.expect.tool_call("calculate", expression="17*23")
        assert call.output == "17 * 23 = 391"
        result.expect.reply.contains("391").matches(r"\bit is \d+")
        result.expect.no_interruption().no_errors()
        result.expect.latency_below(1.0)
        assert result.latency == pytest.approx(0.4, abs=0.05)

        with pytest.raises(AssertionError) as info:
            result.expect.tool_call("calculate", expression="2 + 2")
        message = str(info.value)
        assert "expected a call to tool 'calculate' with arguments including {'expression': '2 + 2'}" in message
        assert "user: What is 17 times 23?" in message
        assert "tool calculate(" in message and "agent: 'It is 391.'" in message

        with pytest.raises(AssertionError, match="expected a call to tool 'current_time'"):
            result.expect.tool_call("current_time")
        with pytest.raises(AssertionError, match="expected no call to tool 'calculate'"):
            result.expect.no_tool_call("calculate")
        with pytest.raises(AssertionError, match="expected the reply to contain '392'"):
            result.expect.reply.contains("392")
        with pytest.raises(AssertionError, match=r"expected the reply to match /\^392/"):
            result.expect.reply.matches("^392")
        with pytest.raises(AssertionError, match=r"within 0.1s \(it took 0.40s\)"):
            result.expect.latency_below(0.1)
        with pytest.raises(AssertionError, match="expected a handoff to 'Billing'"):
            result.expect.handoff("Billing")

    run_virtual(main())


class Billing(Agent):
    def __init__(self) -> None:
        super().__init__("You handle billing.", name="Billing")


class Front(Agent):
    def __init__(self) -> None:
        super().__init__("You route calls.", name="Front")

    from vocalis.tools.function import function_tool

    @function_tool
    async def transfer_to_billing(self) -> Agent:
        """Hand the caller to billing."""
        return Billing()


def test_handoff_is_seen_and_no_tool_call_passes() -> None:
    async def main() -> None:
        llm = FakeLLM([FakeResponse(tool_calls=[("transfer_to_billing", "{}")]), "Billing here."])
        async with evaluate(Front(), fakes(llm)) as ev:
            result = await ev.say("I have a question about my bill")
            result.expect.handoff("Billing")
            second = await ev.say("thanks")
        second.expect.no_tool_call()
        with pytest.raises(AssertionError, match="expected a handoff to 'Billing'"):
            second.expect.handoff("Billing")

    run_virtual(main())


def test_interruption_fails_no_interruption() -> None:
    events = [
        TurnEvent(1.0, "interruption", {"reason": "speech", "speech_id": "s1"}),
        TurnEvent(1.1, "agent_turn", {"speech_id": "s1", "text": "one two", "interrupted": True, "source": "reply"}),
    ]
    result = TurnResult(user="stop", started_at=0.0, events=events)
    with pytest.raises(AssertionError, match="expected no interruption") as info:
        result.expect.no_interruption()
    assert "interruption (speech)" in str(info.value) and "[interrupted]" in str(info.value)
    TurnResult(user="hi", started_at=0.0, events=events[1:2][:0]).expect.no_interruption()


def test_judge_passes_fails_and_rejects_answers_that_are_not_yes_or_no() -> None:
    async def main() -> None:
        judge_llm = FakeLLM(["Yes, it greets.", "no", "Perhaps."])
        async with evaluate(Agent("Be brief."), fakes(FakeLLM(["Hello there!"]))) as ev:
            result = await ev.say("hi")
        verdict = await result.expect.reply.judged(judge_llm, intent="greets the user")
        assert verdict.passed and verdict.answer.startswith("Yes")
        asked = judge_llm.requests[0].chat_ctx.last_message("user")
        assert asked is not None and "greets the user" in asked.content and "Hello there!" in asked.content
        assert "user: hi" in asked.content and judge_llm.requests[0].tools == []
        with pytest.raises(AssertionError, match="meet the intent 'greets the user' \\(judge said no\\)"):
            await result.expect.reply.judged(LLMJudge(judge_llm), intent="greets the user")
        with pytest.raises(AssertionError, match="not yes or no"):
            await result.expect.reply.judged(judge_llm, intent="greets the user")

        async def strict(*, intent: str, reply: str, conversation: str) -> Verdict:
            return Verdict("hello" in reply.lower(), "custom")

        await result.expect.reply.judged(strict, intent="says hello")

    run_virtual(main())


def test_yes_no_parsing_and_argument_matching() -> None:
    assert parse_yes_no(" Yes.") is True and parse_yes_no("NO, it does not") is False
    assert parse_yes_no("yesterday") is None and parse_yes_no("") is None
    assert arguments_match({"value": 2}, {"value": 2.0, "unit": "m"})
    assert arguments_match({"city": "new york"}, {"city": "New York "})
    assert not arguments_match({"city": "Paris"}, {"city": "Rome"})
    assert not arguments_match({"city": "Paris"}, {})
    assert arguments_match({"q": {"a": "X"}}, {"q": {"a": "x", "b": 1}})
