"""Done-when: RealTimePipeline holds a conversation with OpenAIRealtime over the local server.

A greeting, a question answered through a function tool, a barge-in that
cancels and truncates the answer, and a last exchange — on virtual time, so
the ten-second conversation runs in well under a second while the WebSocket
traffic is real.
"""

from __future__ import annotations

import pytest
from realtime_server import API_KEY, RealtimeServer, ServerTurn

from vocalis import Agent, RealTimePipeline
from vocalis.chat import ChatMessage, ChatRole, FunctionCall, FunctionCallOutput
from vocalis.testing import Conversation, run_virtual
from vocalis.tools.function import function_tool
from vocalis_openai.realtime import OpenAIRealtime

GREETING = "Hello! How can I help?"
ANSWER = "Order 42 ships tomorrow, and it should arrive by Friday afternoon."
runs: list[str] = []


@function_tool
async def lookup_order(order_id: str) -> str:
    """Find an order."""
    runs.append(order_id)
    return f"order {order_id} ships tomorrow"


def test_realtime_conversation_with_greeting_tool_and_barge_in() -> None:
    runs.clear()
    server = RealtimeServer(
        [
            ServerTurn(reply=GREETING),
            ServerTurn(heard="where is order 42", tool_calls=[("lookup_order", '{"order_id": "42"}')]),
            ServerTurn(reply=ANSWER),
            ServerTurn(heard="thanks bye", reply="Goodbye!"),
        ],
        pace=0.5,
    )  # audio arrives twice as fast as it plays, as from the real service

    async def main() -> None:
        async with server:
            model = OpenAIRealtime(
                _env_file=None,
                api_key=API_KEY,
                base_url=server.base_url,
                silence_duration_ms=300,
                interrupt_response=False,
            )
            agent = Agent("You track orders.", tools=[lookup_order])
            async with Conversation(agent, RealTimePipeline(model)) as conv:
                [rt] = model._sessions
                await conv.wait_for_speech(await conv.session.say(GREETING))
                await conv.user_speaks(1.0)
                await conv.wait_for_state("speaking")  # the answer after the tool ran
                await conv.silence(1.0)
                await conv.user_speaks(0.5)  # barge-in
                await conv.wait_for_agent_turn(4)
                await conv.wait_for(lambda: any(e["type"] == "conversation.item.truncated" for e in server.sent))
            await model.aclose()
        assert rt.errors == []
        check(server, conv, agent)

    run_virtual(main())


def check(server: RealtimeServer, conv: Conversation, agent: Agent) -> None:
    assert server.problems == []
    # The session: instructions and the tool, configured once.
    update = server.of_type("session.update")[0]["session"]
    assert update["instructions"] == "You track orders."
    assert [t["name"] for t in update["tools"]] == ["lookup_order"]
    assert server.of_type("response.create")[0]["response"]["instructions"].endswith(GREETING)

    # The tool ran once and its output went back under the server's call id.
    assert runs == ["42"]
    assert conv.tool_calls() == [("lookup_order", "order 42 ships tomorrow", False)]
    issued = next(e for e in server.sent if e["type"] == "response.function_call_arguments.done")["call_id"]
    outputs = [e["item"] for e in server.of_type("conversation.item.create")]
    assert outputs == [{"type": "function_call_output", "call_id": issued, "output": "order 42 ships tomorrow"}]

    # Barge-in: the answer was cancelled and truncated to what had played.
    answer_id = [e["response"]["id"] for e in server.sent if e["type"] == "response.created"][2]
    assert [e["response_id"] for e in server.of_type("response.cancel")] == [answer_id]
    [truncate] = server.of_type("conversation.item.truncate")
    item = server.connections[0].items[truncate["item_id"]]
    assert item.role == "assistant" and truncate["content_index"] == 0
    assert truncate["audio_end_ms"] == pytest.approx(1000, abs=100) and truncate["audio_end_ms"] < item.audio_ms
    assert any(e["type"] == "conversation.item.truncated" for e in server.sent)

    # What the session saw.
    assert conv.user_turns() == ["where is order 42", "thanks bye"]
    turns = conv.named("agent_turn")
    assert [t["text"] for t in turns[:2]] == [GREETING, ""]
    assert turns[2]["interrupted"] and 0 < len(turns[2]["text"]) < len(ANSWER)
    assert ANSWER.startswith(turns[2]["text"])
    assert turns[3]["text"] == "Goodbye!" and not turns[3]["interrupted"]
    assert conv.agent_states() == [
        "starting",
        "idle",
        "thinking",
        "speaking",
        "idle",  # greeting
        "listening",
        "idle",
        "thinking",
        "idle",  # question, the tool call
        "thinking",
        "speaking",
        "listening",  # the answer, cut short
        "idle",
        "thinking",
        "speaking",
        "idle",  # goodbye
        "closing",
    ]
    assert conv.errors() == []
    assert conv.agent_audio_seconds() > 1.0

    # The chat context holds the whole exchange, the cut answer marked so.
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
    ]
    assert isinstance(items[2], FunctionCall) and items[2].call_id == issued
    assert isinstance(items[3], FunctionCallOutput) and items[3].output == "order 42 ships tomorrow"
