"""Pipeline construction, provider resolution, flows, turn detection and realtime."""

from __future__ import annotations

import asyncio
import types

import pytest
from session_helpers import conversation, pipeline

from vocalis import (
    Agent,
    CascadingPipeline,
    ConversationFlow,
    EOUConfig,
    EOUMode,
    RealTimePipeline,
    hookimpl,
    make_plugin_manager,
)
from vocalis.chat import FunctionCallOutput
from vocalis.testing import (
    Conversation,
    FakeEOU,
    FakeLLM,
    FakeRealtimeModel,
    FakeSTT,
    FakeTTS,
    FakeVAD,
    RealtimeTurn,
    run_virtual,
)
from vocalis.tools.function import function_tool


def fake_plugin() -> types.SimpleNamespace:
    @hookimpl
    def vocalis_register_stt(register):
        register(FakeSTT)

    @hookimpl
    def vocalis_register_llm(register):
        register(FakeLLM)

    @hookimpl
    def vocalis_register_tts(register):
        register(FakeTTS)

    @hookimpl
    def vocalis_register_vad(register):
        register(FakeVAD)

    @hookimpl
    def vocalis_register_eou(register):
        register(FakeEOU)

    @hookimpl
    def vocalis_register_realtime(register):
        register(FakeRealtimeModel)

    return types.SimpleNamespace(**{k: v for k, v in locals().items() if k.startswith("vocalis_")})


def registry():
    return make_plugin_manager(autoload=False, plugins=[("fakes", fake_plugin())]).registry


def test_providers_by_name_and_by_settings(monkeypatch) -> None:
    reg = registry()
    by_name = CascadingPipeline(stt="fake", llm="fake", tts="fake", vad="fake", registry=reg)
    assert isinstance(by_name.stt, FakeSTT) and isinstance(by_name.vad, FakeVAD)
    # Only one provider of each kind installed: it is picked without configuration.
    implicit = CascadingPipeline(registry=reg)
    assert isinstance(implicit.llm, FakeLLM) and isinstance(implicit.turn_detector, FakeEOU)
    monkeypatch.setenv("VOCALIS_TTS", "fake")
    assert isinstance(CascadingPipeline(stt="fake", llm="fake", registry=reg).tts, FakeTTS)


def test_missing_and_wrong_providers_give_clear_errors() -> None:
    empty = make_plugin_manager(autoload=False).registry
    with pytest.raises(ValueError, match="no stt provider given and none configured"):
        CascadingPipeline(registry=empty)
    with pytest.raises(LookupError, match="no llm provider named 'nope'"):
        CascadingPipeline(stt="fake", llm="nope", registry=registry())
    with pytest.raises(TypeError, match="stt= expects a STT"):
        CascadingPipeline(stt=FakeTTS(), llm=FakeLLM(), tts=FakeTTS())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        RealTimePipeline(model=FakeLLM())  # type: ignore[arg-type]
    assert isinstance(RealTimePipeline("fake", registry=registry()).model, FakeRealtimeModel)


def test_pipeline_serves_one_session() -> None:
    async def main() -> None:
        shared = pipeline()
        first = Conversation(Agent("a"), shared)
        await first.start()
        second = Conversation(Agent("b"), shared)
        with pytest.raises(RuntimeError, match="one session"):
            await second.start()
        await first.close()

    run_virtual(main())


def test_non_streaming_stt_is_segmented_by_vad() -> None:
    async def main() -> None:
        stt = FakeSTT(["first question", "second question"], streaming=False)
        async with conversation(stt=stt, responses=["One.", "Two."]) as conv:
            await conv.user_speaks(0.8)
            await conv.wait_for_agent_turn()
            await conv.user_speaks(0.8)
            await conv.wait_for_agent_turn()
        assert conv.user_turns() == ["first question", "second question"]

    run_virtual(main())


def test_non_streaming_stt_without_vad_is_refused() -> None:
    async def main() -> None:
        empty = make_plugin_manager(autoload=False).registry  # no VAD to fall back on
        p = CascadingPipeline(stt=FakeSTT(streaming=False), llm=FakeLLM(), tts=FakeTTS(), registry=empty)
        conv = Conversation(Agent("x"), p)
        with pytest.raises(ValueError, match="needs a vad"):
            await conv.start()

    run_virtual(main())


def _turn_latency(probability: float, mode: EOUMode) -> float:
    async def main() -> float:
        eou = FakeEOU(probability)
        p = pipeline(
            ["my number is 555"], ["Got it."], eou=eou, eou_config=EOUConfig(mode=mode, min_delay=0.5, max_delay=1.5)
        )
        async with Conversation(Agent("x"), p) as conv:
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
        speech_end = next(
            e.time for e in conv.events if e.name == "user_state_changed" and e.payload["state"] == "idle"
        )
        turn = next(e.time for e in conv.events if e.name == "user_turn")
        assert eou.calls == ["my number is 555"]
        return round(turn - speech_end, 3)

    return run_virtual(main())


def test_end_of_turn_wait_follows_the_turn_detector() -> None:
    # Measured from the VAD's report, which comes 0.3 s (its hang-over) after the last word.
    assert _turn_latency(0.95, EOUMode.FIXED) == 0.2
    assert _turn_latency(0.1, EOUMode.FIXED) == 1.2
    assert _turn_latency(1.0, EOUMode.ADAPTIVE) == 0.2
    assert _turn_latency(0.0, EOUMode.ADAPTIVE) == 1.2
    assert _turn_latency(0.5, EOUMode.ADAPTIVE) == 0.7


def test_user_resuming_speech_cancels_the_pending_turn() -> None:
    async def main() -> None:
        stt = FakeSTT(["my number is", "five five five"])
        p = pipeline(stt=stt, responses=["Thanks."], eou=FakeEOU(0.0), eou_config=EOUConfig(max_delay=1.2))
        async with Conversation(Agent("x"), p) as conv:
            await conv.user_speaks(0.6, then_silence=0.8)  # pause shorter than max_delay
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
        assert conv.user_turns() == ["my number is five five five"]

    run_virtual(main())


def test_conversation_flow_hooks_and_rewrites_the_reply() -> None:
    seen: list[str] = []

    class Polite(ConversationFlow):
        async def on_turn_start(self, transcript: str) -> None:
            seen.append(f"start:{transcript}")

        async def on_turn_end(self) -> None:
            seen.append("end")

        async def run(self, transcript: str):
            yield "Thanks for asking. "
            async for text in self.process_with_llm():
                yield text.upper()

    async def main() -> None:
        flow = Polite()
        async with conversation(transcripts=["how are you"], responses=["fine thanks"], conversation_flow=flow) as conv:
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
            assert flow.agent is conv.session.agent
        assert seen == ["start:how are you", "end"]
        assert conv.agent_turns() == ["Thanks for asking. FINE THANKS"]
        assert conv.session.agent.chat_context.items[-1].content == "Thanks for asking. FINE THANKS"

    run_virtual(main())


def test_process_with_llm_outside_run_is_an_error() -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError):
            async for _ in ConversationFlow().process_with_llm():
                pass

    run_virtual(main())


# -- realtime ------------------------------------------------------------------
@function_tool
async def lookup_order(order_id: str) -> str:
    """Find an order."""
    return f"order {order_id} ships tomorrow"


def test_realtime_pipeline_conversation_with_tool_and_barge_in() -> None:
    async def main() -> None:
        model = FakeRealtimeModel(
            [
                RealtimeTurn(heard="where is order 42", tool_calls=[("lookup_order", '{"order_id": "42"}')]),
                RealtimeTurn(reply="Order 42 ships tomorrow, and it should arrive by Friday afternoon."),
                RealtimeTurn(heard="thanks bye", reply="Goodbye!"),
            ]
        )
        agent = Agent("You track orders.", tools=[lookup_order])
        async with Conversation(agent, RealTimePipeline(model)) as conv:
            rt = model.sessions[0]
            assert rt.instructions == "You track orders." and rt.tools == ["lookup_order"]
            await conv.user_speaks(1.0)
            await conv.wait_for(lambda: conv.session.agent_state == "speaking")
            await conv.silence(1.0)
            await conv.user_speaks(0.5)  # barge-in
            await conv.wait_for_agent_turn(3)
        assert rt.tool_outputs[0][1:] == ("order 42 ships tomorrow", False)
        assert len(rt.cancels) == 1 and rt.cancels[0] == pytest.approx(1.0, abs=0.1)
        assert conv.user_turns() == ["where is order 42", "thanks bye"]
        turns = conv.named("agent_turn")
        assert turns[1]["interrupted"] and 0 < len(turns[1]["text"]) < 60
        assert turns[2]["text"] == "Goodbye!"
        items = agent.chat_context.items
        assert any(isinstance(i, FunctionCallOutput) for i in items)
        assert conv.errors() == []

    run_virtual(main())


def test_realtime_say_and_reply() -> None:
    async def main() -> None:
        model = FakeRealtimeModel([RealtimeTurn(reply="Hello there."), RealtimeTurn(reply="Sure.")])
        async with Conversation(Agent("x"), RealTimePipeline(model)) as conv:
            await (await conv.session.say("Hello there."))
            handle = await conv.session.reply("Offer help.")
            assert handle.done()
        rt = model.sessions[0]
        assert "Hello there." in rt.response_requests[0] and rt.response_requests[1] == "Offer help."
        assert conv.agent_turns() == ["Hello there.", "Sure."]

    run_virtual(main())


def test_realtime_error_events_are_reported_and_the_session_goes_on() -> None:
    from vocalis.providers.base import ProviderError
    from vocalis.providers.realtime import RealtimeEvent, RealtimeEventType

    async def main() -> None:
        model = FakeRealtimeModel([RealtimeTurn(reply="Still here.")])
        async with Conversation(Agent("x"), RealTimePipeline(model)) as conv:
            failure = ProviderError("rate limited", provider="realtime:fake")
            model.sessions[0].send(RealtimeEvent(RealtimeEventType.ERROR, text="rate limited", error=failure))
            await asyncio.sleep(0)
            await (await conv.session.say("Still here."))
        assert [(e["source"], e["message"]) for e in conv.errors()] == [("realtime:fake", "rate limited")]
        assert conv.agent_turns() == ["Still here."]

    run_virtual(main())
