"""AgentSession: the public API, states, events and speech scheduling."""

from __future__ import annotations

import asyncio
import time

import pytest
from session_helpers import conversation, pipeline

from vocalis import Agent, AgentSession, AgentState, ChatRole, UserState, function_tool
from vocalis.chat import FunctionCall, FunctionCallOutput
from vocalis.testing import FakeLLM, FakeResponse, FakeTTS, run_virtual


@function_tool
async def get_weather(city: str) -> str:
    """Look up the weather.

    Args:
        city: City name.
    """
    return f"sunny and 21 degrees in {city}"


def test_scripted_conversation_end_to_end() -> None:
    """Greeting, question, tool call, spoken answer, barge-in, close: in well under a second."""
    started = time.perf_counter()

    async def main() -> None:
        llm = FakeLLM(
            [
                FakeResponse(tool_calls=[("get_weather", '{"city": "Paris"}')], ttft=0.2),
                FakeResponse("It is sunny and 21 degrees in Paris. Anything else I can help you with today?", ttft=0.2),
            ]
        )
        conv = conversation(
            Agent("You are a weather bot.", tools=[get_weather]), ["what is the weather in paris", "stop"], llm=llm
        )
        async with conv:
            greeting = await conv.session.say("Hello! Ask me about the weather.")
            await greeting
            assert not greeting.interrupted
            await conv.silence(0.5)
            await conv.user_speaks(1.2)
            await conv.wait_for(lambda: conv.session.agent_state == AgentState.SPEAKING)
            await conv.silence(1.0)
            cut_at = conv.now
            await conv.user_speaks(1.0)  # barge-in
            await conv.wait_for_agent_turn(2)
            played_before_cut = [f for f in conv.transport.audio_output.frames if f.time <= cut_at + 0.6]
            assert conv.transport.audio_output.clears, "barge-in must clear the transport's buffer"
            assert len(played_before_cut) == len(conv.transport.audio_output.frames) - 0  # nothing after
            await conv.wait_for_agent_turn(3)
        states = conv.agent_states()
        assert states[:4] == ["starting", "idle", "speaking", "idle"]
        assert "thinking" in states and states[-1] == "closing"
        assert conv.user_turns() == ["what is the weather in paris", "stop"]
        assert conv.tool_calls() == [("get_weather", "sunny and 21 degrees in Paris", False)]
        answer = conv.named("agent_turn")[1]
        assert answer["interrupted"] is True
        assert (
            0
            < len(answer["text"])
            < len("It is sunny and 21 degrees in Paris. Anything else I can help you with today?")
        )
        items = conv.session.agent.chat_context.items
        kinds = [type(i).__name__ if not hasattr(i, "role") else i.role.value for i in items]
        assert kinds[:6] == ["system", "assistant", "user", "FunctionCall", "FunctionCallOutput", "assistant"]
        cut = items[5]
        assert cut.interrupted and cut.content == answer["text"]
        assert conv.errors() == []

    run_virtual(main())
    assert time.perf_counter() - started < 1.0


def test_state_sequence_of_a_normal_turn() -> None:
    async def main() -> None:
        async with conversation(transcripts=["hi"], responses=["Hello there."]) as conv:
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
        assert conv.agent_states() == [
            "starting",
            "idle",
            "listening",
            "idle",
            "thinking",
            "speaking",
            "idle",
            "closing",
        ]
        assert conv.user_states() == ["speaking", "idle", "listening", "idle"]
        speech_in = conv.named("on_speech_in")
        assert speech_in == [{"text": "hi", "is_final": True, "language": None}]
        assert [p["text"] for p in conv.named("on_speech_out")] == ["Hello there."]

    run_virtual(main())


def test_state_events_only_on_change_and_properties() -> None:
    async def main() -> None:
        conv = conversation()
        assert conv.session.agent_state is AgentState.STARTING
        assert conv.session.user_state is UserState.IDLE
        await conv.start()
        await conv.silence(1.0)
        assert conv.session.agent_state is AgentState.IDLE
        await conv.close()
        changes = conv.named("agent_state_changed")
        assert changes[0] == {"state": AgentState.STARTING, "old_state": AgentState.STARTING}
        assert all(c["state"] != c["old_state"] for c in changes[1:])
        assert conv.session.agent_state is AgentState.CLOSING

    run_virtual(main())


def test_reply_waits_for_playback_and_uses_instructions() -> None:
    async def main() -> None:
        llm = FakeLLM(["Welcome back."])
        async with conversation(llm=llm) as conv:
            t0 = conv.now
            handle = await conv.session.reply("Greet the user warmly.")
            assert handle.done() and not handle.interrupted
            assert conv.now - t0 == pytest.approx(len("Welcome back.") * 0.05, abs=0.03)
            request = llm.requests[-1].chat_ctx
            assert request.items[-1].role is ChatRole.DEVELOPER
            assert request.items[-1].content == "Greet the user warmly."
            stored = conv.session.agent.chat_context
            assert all(getattr(i, "content", "") != "Greet the user warmly." for i in stored.items)
            assert stored.items[-1].content == "Welcome back."

    run_virtual(main())


def test_second_reply_while_running_and_empty_reply_are_discarded() -> None:
    async def main() -> None:
        llm = FakeLLM([FakeResponse("First answer is long enough.", ttft=0.3)])
        async with conversation(llm=llm) as conv:
            first = await conv.session.reply("one", wait_for_playback=False)
            second = await conv.session.reply("two", wait_for_playback=False)
            empty = await conv.session.reply("   ")
            assert second.discarded and empty.discarded and not first.discarded
            await first
            assert len(llm.requests) == 1

    run_virtual(main())


def test_say_during_reply_is_spoken_after_it() -> None:
    async def main() -> None:
        tts = FakeTTS()
        async with conversation(responses=[FakeResponse("The reply comes first.", ttft=0.2)], tts=tts) as conv:
            reply = await conv.session.reply("answer", wait_for_playback=False)
            said = await conv.session.say("Then this.")
            await said
            assert reply.done() and not reply.interrupted
        assert conv.agent_turns() == ["The reply comes first.", "Then this."]
        assert tts.spoken == ["The reply comes first.", "Then this."]

    run_virtual(main())


def test_interrupt_mid_sentence_truncates_and_stops_audio() -> None:
    async def main() -> None:
        text = "One two three four five six seven eight nine ten eleven twelve."
        async with conversation(responses=[text]) as conv:
            handle = await conv.session.reply("count", wait_for_playback=False)
            await asyncio.sleep(1.0)
            frames_before = len(conv.transport.audio_output.frames)
            assert conv.session.interrupt() is True
            at = conv.now
            await handle
            assert handle.interrupted
            assert conv.now == at  # stops at once, nothing left to wait for
            assert conv.transport.audio_output.clears == [at]
            assert len(conv.transport.audio_output.frames) == frames_before
            assert conv.session.interrupt() is False
            message = conv.session.agent.chat_context.items[-1]
            assert message.interrupted
            assert text.startswith(message.content) and 0 < len(message.content) < len(text)
            # 1.0 s heard of 3.2 s: about a third of the words
            assert 3 <= len(message.content.split()) <= 5
            assert conv.session.agent_state is AgentState.IDLE

    run_virtual(main())


def test_non_interruptible_say_survives_interrupt_but_not_force() -> None:
    async def main() -> None:
        async with conversation() as conv:
            handle = await conv.session.say("You must hear this whole message.", interruptible=False)
            await asyncio.sleep(0.2)
            assert conv.session.interrupt() is False
            await handle
            assert not handle.interrupted
            handle = await conv.session.say("This one can be forced off.", interruptible=False)
            await asyncio.sleep(0.2)
            assert conv.session.interrupt(force=True) is True
            await handle
            assert handle.interrupted

    run_virtual(main())


def test_close_is_idempotent_runs_cleanup_once_and_leaks_no_tasks() -> None:
    calls: list[str] = []

    class Tracked(Agent):
        async def on_exit(self) -> None:
            calls.append("on_exit")
            raise RuntimeError("on_exit broke")

        async def cleanup(self) -> None:
            calls.append("cleanup")

    async def main() -> None:
        before = asyncio.all_tasks()
        conv = conversation(
            Tracked("x"), responses=[FakeResponse("A long reply that will be cut off by close.", ttft=0.1)]
        )
        await conv.start()
        handle = await conv.session.reply("talk", wait_for_playback=False)
        await asyncio.sleep(0.5)
        await asyncio.gather(conv.session.close(), conv.session.close())
        await conv.session.close()
        assert handle.done() and handle.interrupted
        assert calls == ["on_exit", "cleanup"]
        assert conv.transport.closed == 1
        errors = conv.errors()
        assert [e["source"] for e in errors] == ["agent.on_exit"]
        assert len(conv.named("close")) == 1
        await asyncio.sleep(0)
        assert asyncio.all_tasks() - before == set()

    run_virtual(main())


def test_two_sessions_in_one_process_do_not_cross_talk() -> None:
    async def main() -> None:
        a = conversation(transcripts=["I am Alice"], responses=["Hi Alice."])
        b = conversation(transcripts=["I am Bob"], responses=["Hi Bob."])
        async with a, b:
            await asyncio.gather(a.user_speaks(0.8), b.user_speaks(1.1))
            await asyncio.gather(a.wait_for_agent_turn(), b.wait_for_agent_turn())
        assert a.user_turns() == ["I am Alice"] and b.user_turns() == ["I am Bob"]
        assert a.agent_turns() == ["Hi Alice."] and b.agent_turns() == ["Hi Bob."]
        assert all("Bob" not in str(e.payload) for e in a.events)
        assert all("Alice" not in str(e.payload) for e in b.events)
        assert a.session.id != b.session.id

    run_virtual(main())


def test_wake_up_fires_once_per_idle_period() -> None:
    async def main() -> None:
        fired: list[float] = []
        conv = conversation(transcripts=["hello"], responses=["Hi."], wake_up=5.0)
        conv.session.on_wake_up = lambda: fired.append(conv.now)
        async with conv:
            await conv.silence(12.0)
            assert fired == [pytest.approx(5.0)]
            await conv.user_speaks(0.5)  # user activity re-arms
            await conv.wait_for_agent_turn()
            end_of_reply = conv.now
            await conv.silence(12.0)
            assert len(fired) == 2
            assert fired[1] == pytest.approx(end_of_reply + 5.0, abs=0.05)
        assert len(conv.named("on_wake_up")) == 2

    run_virtual(main())


def test_wake_up_is_paused_while_the_agent_speaks_and_async_callback_runs() -> None:
    async def main() -> None:
        fired: list[float] = []

        async def on_wake() -> None:
            fired.append(conv.now)
            await conv.session.say("Are you still there?")

        conv = conversation(wake_up=2.0)
        conv.session.on_wake_up = on_wake
        async with conv:
            handle = await conv.session.say("x" * 60)  # 3 s of speech
            await handle
            spoke_until = conv.now
            await conv.silence(6.0)
        assert fired[0] == pytest.approx(spoke_until + 2.0, abs=0.05)
        assert "Are you still there?" in conv.agent_turns()
        assert len(fired) == 1

    run_virtual(main())


def test_wake_up_must_be_positive() -> None:
    async def main() -> None:
        with pytest.raises(ValueError):
            AgentSession(Agent("x"), pipeline(), wake_up=0)

    run_virtual(main())


def test_say_before_start_and_after_close_is_reported_not_raised() -> None:
    async def main() -> None:
        conv = conversation()
        handle = await conv.session.say("too early")
        assert handle.discarded
        assert conv.errors()[0]["source"] == "session"
        await conv.start()
        await conv.close()
        late = await conv.session.say("too late")
        assert late.discarded

    run_virtual(main())


def test_chat_context_records_tool_items_in_order() -> None:
    async def main() -> None:
        llm = FakeLLM(
            [FakeResponse("Let me check.", tool_calls=[("get_weather", '{"city": "Oslo"}')]), "Cold in Oslo."]
        )
        async with conversation(Agent("w", tools=[get_weather]), ["weather in oslo"], llm=llm) as conv:
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
        items = conv.session.agent.chat_context.items
        assert [type(i).__name__ for i in items[1:]] == [
            "ChatMessage",
            "ChatMessage",
            "FunctionCall",
            "FunctionCallOutput",
            "ChatMessage",
        ]
        assert isinstance(items[3], FunctionCall) and isinstance(items[4], FunctionCallOutput)
        assert items[1].role is ChatRole.USER
        assert items[2].content == "Let me check." and items[-1].content == "Cold in Oslo."
        assert conv.agent_turns() == ["Let me check. Cold in Oslo."]

    run_virtual(main())


def test_transport_receives_plain_session_events() -> None:
    async def main() -> None:
        async with conversation(transcripts=["hi"], responses=["Hello."]) as conv:
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
        names = [name for name, _ in conv.transport.events]
        assert "user_turn" in names and "agent_turn" in names and "on_speech_in" in names
        states = [p["state"] for name, p in conv.transport.events if name == "agent_state_changed"]
        assert states[:2] == ["idle", "listening"] and all(type(s) is str for s in states)

    run_virtual(main())


def test_an_agent_cannot_serve_two_running_sessions() -> None:
    async def main() -> None:
        agent = Agent("shared")
        first = conversation(agent)
        await first.start()
        with pytest.raises(RuntimeError, match="already belongs to a running session"):
            AgentSession(agent, pipeline())
        await first.close()
        AgentSession(agent, pipeline())  # fine once the first one closed

    run_virtual(main())


def test_send_text_is_a_user_turn_and_say_can_wait() -> None:
    async def main() -> None:
        async with conversation(responses=["Typed answer."]) as conv:
            handle = await conv.session.say("Hello.", wait_for_playback=True)
            assert handle.done()
            reply = await conv.session.send_text("  typed question ")
            assert reply.done() and reply.text == "Typed answer."
            empty = await conv.session.send_text(" ")
            assert empty.discarded
        assert conv.user_turns() == ["typed question"]
        assert conv.errors()[0]["source"] == "send_text"

    run_virtual(main())


def test_on_speech_out_fires_as_each_sentence_starts_playing() -> None:
    async def main() -> None:
        async with conversation() as conv:
            handle = await conv.session.say("First sentence here. Second one follows.")
            await handle
        events = [e for e in conv.events if e.name == "on_speech_out"]
        assert [e.payload["text"] for e in events] == ["First sentence here.", "Second one follows."]
        assert events[1].time - events[0].time == pytest.approx(len("First sentence here.") * 0.05, abs=0.03)
        assert all(e.payload["speech_id"] == handle.id for e in events)

    run_virtual(main())


def test_unheard_sentences_are_not_announced() -> None:
    async def main() -> None:
        async with conversation() as conv:
            handle = await conv.session.say("First sentence here. Second one follows.")
            await asyncio.sleep(0.3)
            conv.session.interrupt()
            await handle
        assert [p["text"] for p in conv.named("on_speech_out")] == ["First sentence here."]

    run_virtual(main())


def test_unknown_event_names_are_warned_about() -> None:
    import io

    from loguru import logger

    async def main() -> None:
        sink = io.StringIO()
        handler = logger.add(sink, level="WARNING")
        try:
            conv = conversation()
            conv.session.on("user_input_transcribed", lambda e: None)
            conv.session.on("user_turn", lambda e: None)
        finally:
            logger.remove(handler)
        assert "'user_input_transcribed'" in sink.getvalue()
        assert "'user_turn'" not in sink.getvalue()

    run_virtual(main())
