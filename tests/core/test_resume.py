"""Session resume: snapshots, the in-process store, and a server continuing a conversation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vocalis import Agent, CascadingPipeline
from vocalis.chat import ChatContext, ChatMessage, FunctionCall, FunctionCallOutput
from vocalis.providers.session_store import MemorySessionStore, SessionSnapshot, chat_from_json
from vocalis.serve.server import AdmissionError, ServeOptions, SessionServer
from vocalis.testing import FakeLLM, FakeSTT, FakeTransport, FakeTTS, FakeVAD, run_virtual
from vocalis.testing.serve_fakes import echo_history


class Greeter(Agent):
    def __init__(self) -> None:
        super().__init__("Be brief.")
        self.entered = 0

    async def on_enter(self) -> None:
        self.entered += 1
        await self.session.say("Welcome!")


def make_server(store: MemorySessionStore, **options: Any) -> SessionServer:
    return SessionServer(
        Greeter,
        lambda: CascadingPipeline(
            stt=FakeSTT([]), llm=FakeLLM([echo_history]), tts=FakeTTS(), vad=FakeVAD(), turn_detector=None
        ),
        ServeOptions(store=store, **options),
    )


def test_a_snapshot_round_trips_every_kind_of_item() -> None:
    ctx = ChatContext()
    ctx.add_message("system", "Be brief.")
    ctx.add_message("user", "What time is it?")
    ctx.add_function_call("call_1", "clock", '{"city": "Tokyo"}')
    ctx.add_function_output("call_1", "clock", "20:52", is_error=False)
    ctx.append(ChatMessage("assistant", "It is 20:", interrupted=True))
    snapshot = SessionSnapshot.of("s_1", "Greeter", ctx)
    back = SessionSnapshot.from_json(snapshot.to_json())
    assert back.session_id == "s_1" and back.agent == "Greeter"
    assert [type(i) for i in back.items] == [ChatMessage, FunctionCall, FunctionCallOutput, ChatMessage]
    assert back.items == snapshot.items  # instructions are left out: the new agent brings its own
    assert back.items[-1].interrupted


@pytest.mark.parametrize("bad", ['{"x": 1}', "[]", '{"session_id": "s", "items": [{"type": "poem"}]}'])
def test_a_malformed_snapshot_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        SessionSnapshot.from_json(bad)
    with pytest.raises(ValueError):
        chat_from_json([{"type": "message"}])


def test_the_memory_store_expires_and_owns() -> None:
    async def main() -> None:
        store = MemorySessionStore()
        await store.save(SessionSnapshot("s", "A"), ttl=5)
        assert (await store.load("s")) is not None
        assert await store.claim("s", "w1", ttl=5)
        assert not await store.claim("s", "w2", ttl=5)
        await store.release("s", "w2")  # not the owner: nothing happens
        assert not await store.claim("s", "w2", ttl=5)
        await asyncio.sleep(6)  # virtual time: both the snapshot and the claim expired
        assert (await store.load("s")) is None
        assert await store.claim("s", "w2", ttl=5)

    run_virtual(main())


def test_a_reconnect_continues_the_conversation_without_a_second_greeting() -> None:
    async def main() -> None:
        store = MemorySessionStore()
        server = make_server(store)
        first = await server.open_session(FakeTransport())
        await first.send_text("my name is Ada")
        await asyncio.sleep(5)
        session_id = first.id
        await first.close(reason="hangup")
        await asyncio.sleep(1)  # the final save

        transport = FakeTransport()
        again = await server.open_session(transport, resume_id=session_id)
        assert again.id == session_id and again.agent.entered == 0  # no second "Welcome!"
        sent = [payload for name, payload in transport.events if name == "session"]
        assert sent == [{"session_id": session_id, "resumed": True, "items": 3}]
        await again.send_text("what is my name")
        await asyncio.sleep(5)
        answer = again.agent.chat_context.last_message("assistant")
        assert answer is not None and answer.content == "heard: my name is Ada | what is my name"
        await server.aclose()

    run_virtual(main())


def test_an_unknown_session_id_starts_afresh_and_a_running_one_is_refused() -> None:
    async def main() -> None:
        store = MemorySessionStore()
        server = make_server(store)
        fresh = await server.open_session(FakeTransport(), resume_id="s_gone")
        assert fresh.id != "s_gone" and fresh.agent.entered == 1
        # Another worker (a second server on the same store) still runs this one.
        other = make_server(store)
        await other.resumer.claim_new("s_elsewhere")
        other.resumer.claim_wait = 1.0
        server.resumer.claim_wait = 1.0
        with pytest.raises(AdmissionError) as info:
            await server.open_session(FakeTransport(), resume_id="s_elsewhere")
        assert info.value.status == 409 and info.value.retry_after > 0
        assert len(server.sessions) == 1  # the refused one left nothing behind
        await server.aclose()
        await other.aclose()

    run_virtual(main())


def test_a_crashed_workers_calls_resume_once_its_lease_lapses() -> None:
    async def main() -> None:
        store = MemorySessionStore()
        crashed = make_server(store)
        session = await crashed.open_session(FakeTransport())
        await session.send_text("remember me")
        await asyncio.sleep(5)
        crashed.resumer._renewer.cancel()  # the worker dies: no renewal, no final save, no release
        survivor = make_server(store)
        survivor.resumer.claim_wait = 30.0  # longer than the 15 s lease
        again = await survivor.open_session(FakeTransport(), resume_id=session.id)
        assert [m.content for m in again.agent.chat_context.messages("user")] == ["remember me"]
        await survivor.aclose()

    run_virtual(main())
