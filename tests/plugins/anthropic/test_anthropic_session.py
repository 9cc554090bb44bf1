"""A whole agent session whose LLM is AnthropicLLM against the local server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from anthropic_messages_server import MessagesServer, StreamReply, message_events, text_reply

from vocalis import Agent, CascadingPipeline, function_tool
from vocalis.testing import Conversation, FakeEOU, FakeSTT, FakeTTS, FakeVAD
from vocalis_anthropic import AnthropicLLM


async def test_agent_calls_a_tool_then_speaks_the_answer(
    server: MessagesServer, make_llm: Callable[..., AnthropicLLM]
) -> None:
    cities: list[str] = []

    @function_tool
    async def get_weather(city: str) -> str:
        """Current weather in a city."""
        cities.append(city)
        return f"sunny and 21 degrees in {city}"

    server.queue(
        StreamReply(
            message_events(
                [
                    ("text", ["Let me check."]),
                    ("tool_use", "toolu_w1", "get_weather", ['{"city"', ': "Par', 'is"}']),
                ],
                stop_reason="tool_use",
            )
        ),
        text_reply(["It is sunny ", "and 21 degrees ", "in Paris."]),
    )
    tts = FakeTTS(seconds_per_char=0.002)
    pipeline = CascadingPipeline(stt=FakeSTT([]), llm=make_llm(), tts=tts, vad=FakeVAD(), turn_detector=FakeEOU())
    agent = Agent("You are a weather assistant.", tools=[get_weather])

    async with Conversation(agent, pipeline) as conv:
        await asyncio.wait_for(conv.session.send_text("What's the weather in Paris?"), 8)

    assert cities == ["Paris"], "the tool must run exactly once, with the streamed arguments"
    assert conv.tool_calls() == [("get_weather", "sunny and 21 degrees in Paris", False)]
    spoken = " ".join(tts.spoken)
    assert "It is sunny and 21 degrees in Paris." in spoken
    assert conv.errors() == []

    first, second = (r.body for r in server.requests)
    assert first["system"] == "You are a weather assistant."
    assert first["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "What's the weather in Paris?"}]}
    ]
    (tool,) = first["tools"]
    assert tool["name"] == "get_weather" and tool["description"] == "Current weather in a city."
    assert tool["input_schema"]["properties"] == {"city": {"type": "string"}}
    # The follow-up carries the call and its result back, as the API requires.
    assistant, results = second["messages"][-2:]
    tool_use = next(b for b in assistant["content"] if b["type"] == "tool_use")
    assert (tool_use["id"], tool_use["name"], tool_use["input"]) == (
        "toolu_w1",
        "get_weather",
        {"city": "Paris"},
    )
    assert results["role"] == "user"
    assert results["content"][0]["type"] == "tool_result"
    assert results["content"][0]["tool_use_id"] == "toolu_w1"
    assert json.dumps(results["content"][0]["content"]).count("sunny and 21 degrees in Paris") == 1
