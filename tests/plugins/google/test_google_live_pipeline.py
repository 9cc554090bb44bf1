"""RealTimePipeline holds a conversation with GeminiLive over the local Live API server.

A greeting, a question answered through a function tool, a barge-in that
cuts the answer (the server's ``interrupted``, then what the user heard is
reported), a ``goAway`` the session moves past with its resumption handle,
and a last exchange on the new connection: on virtual time, so the
conversation runs in well under a second while the WebSocket traffic is real.
"""

from __future__ import annotations

from gemini_live_server import API_KEY, LiveServer, LiveTurn

from vocalis import Agent, RealTimePipeline
from vocalis.chat import ChatMessage, ChatRole, FunctionCall, FunctionCallOutput
from vocalis.testing import Conversation, run_virtual
from vocalis.tools.function import function_tool
from vocalis_google import GeminiLive

GREETING = "Hello! How can I help?"
ANSWER = "Order 42 ships tomorrow, and it should arrive by Friday afternoon at the latest."
runs: list[str] = []


@function_tool
async def lookup_order(order_id: str) -> str:
    """Find an order."""
    runs.append(order_id)
    return f"order {order_id} ships tomorrow"


def test_a_conversation_with_a_tool_a_barge_in_and_a_resumed_connection() -> None:
    runs.clear()
    server = LiveServer(
        [
            LiveTurn(reply=GREETING),
            LiveTurn(heard="where is order 42", tool_calls=[("lookup_order", {"order_id": "42"})]),
            LiveTurn(reply=ANSWER),
            LiveTurn(heard="great thanks", reply="You're welcome!", go_away=30),
            LiveTurn(heard="bye", reply="Goodbye!"),
        ],
        pace=0.5,  # audio arrives twice as fast as it plays, as from the real service
        realtime_playback=True,
    )

    async def main() -> None:
        async with server:
            model = GeminiLive(api_key=API_KEY, base_url=server.url, silence_duration_ms=300, _env_file=None)
            agent = Agent("You track orders.", tools=[lookup_order])
            async with Conversation(agent, RealTimePipeline(model)) as conv:
                [rt] = model._sessions
                await conv.wait_for_speech(await conv.session.say(GREETING))
                await conv.user_speaks(1.0)
                await conv.wait_for_state("speaking")  # the answer, after the tool ran
                await conv.silence(1.0)
                await conv.user_speaks(0.5)  # barge-in
                await conv.wait_for_agent_turn(4)
                await conv.wait_for(lambda: len(server.connections) == 2 and bool(server.connections[1].setup))
                await conv.user_speaks(0.5)
                await conv.wait_for_agent_turn(5)
            await model.aclose()
        assert rt.resumptions == 1 and rt.errors == []
        check(server, conv, agent)

    run_virtual(main())


def check(server: LiveServer, conv: Conversation, agent: Agent) -> None:
    assert server.problems == []
    setup = server.of_kind("setup")[0]
    assert setup["systemInstruction"] == {"parts": [{"text": "You track orders."}]}
    assert [d["name"] for d in setup["tools"][0]["functionDeclarations"]] == ["lookup_order"]
    assert server.of_kind("clientContent")[0]["turns"][0]["parts"][0]["text"].endswith(GREETING)

    # The tool ran once and its result went back under the server's call id.
    assert runs == ["42"]
    assert conv.tool_calls() == [("lookup_order", "order 42 ships tomorrow", False)]
    issued = next(m["toolCall"]["functionCalls"][0]["id"] for _, m in server.sent if "toolCall" in m)
    [response] = server.of_kind("toolResponse")
    assert response == {
        "functionResponses": [{"id": issued, "name": "lookup_order", "response": {"output": "order 42 ships tomorrow"}}]
    }

    # The barge-in: the server cut the answer; the model was told what was heard.
    assert server.interruptions == 1
    note = next(c for c in server.of_kind("clientContent") if "interrupted you" in str(c))
    heard = note["turns"][0]["parts"][0]["text"].split('"')[1]
    turns = conv.named("agent_turn")
    assert turns[2]["interrupted"] and 0 < len(turns[2]["text"]) < len(ANSWER)
    assert ANSWER.startswith(turns[2]["text"]) and ANSWER.startswith(heard)

    # The goAway: the next connection resumed the conversation with the latest handle.
    old, new = server.connections
    last_handle = [
        m["sessionResumptionUpdate"].get("newHandle")
        for i, m in server.sent
        if i == 0 and "sessionResumptionUpdate" in m
    ][-1]
    assert new.resumed_from == last_handle and ("model", "You're welcome!") in new.history
    assert server.expired == 0

    assert conv.user_turns() == ["where is order 42", "great thanks", "bye"]
    assert [t["text"] for t in turns] == [GREETING, "", turns[2]["text"], "You're welcome!", "Goodbye!"]
    assert conv.errors() == []
    items = [i for i in agent.chat_context.items if not (isinstance(i, ChatMessage) and i.role is ChatRole.SYSTEM)]
    summary = [(type(i).__name__, getattr(i, "role", ""), getattr(i, "interrupted", False)) for i in items]
    assert summary == [
        ("ChatMessage", ChatRole.ASSISTANT, False),
        ("ChatMessage", ChatRole.USER, False),
        ("FunctionCall", "", False),
        ("FunctionCallOutput", "", False),
        ("ChatMessage", ChatRole.ASSISTANT, True),
        ("ChatMessage", ChatRole.USER, False),
        ("ChatMessage", ChatRole.ASSISTANT, False),
        ("ChatMessage", ChatRole.USER, False),
        ("ChatMessage", ChatRole.ASSISTANT, False),
    ]
    assert isinstance(items[2], FunctionCall) and items[2].call_id == issued
    assert isinstance(items[3], FunctionCallOutput) and items[3].output == "order 42 ships tomorrow"
