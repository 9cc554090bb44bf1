"""A whole cascade session whose LLM is GeminiLLM against the local REST server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from gemini_rest_server import ErrorReply, RestServer, StreamReply, call_chunk, text_chunks

from vocalis import Agent, CascadingPipeline, function_tool
from vocalis.providers.fallback import FallbackLLM
from vocalis.testing import Conversation, FakeEOU, FakeLLM, FakeSTT, FakeTTS, FakeVAD
from vocalis_google import GeminiLLM


async def test_agent_calls_a_tool_then_speaks_the_answer(rest: RestServer, make_llm: Callable[..., GeminiLLM]) -> None:
    cities: list[str] = []

    @function_tool
    async def get_weather(city: str) -> str:
        """Current weather in a city."""
        cities.append(city)
        return f"sunny and 21 degrees in {city}"

    rest.queue(
        StreamReply([call_chunk([("get_weather", {"city": "Paris"})], text="Let me check.", ids=True)]),
        StreamReply(text_chunks(["It is sunny ", "and 21 degrees ", "in Paris."])),
    )
    tts = FakeTTS(seconds_per_char=0.002)
    pipeline = CascadingPipeline(stt=FakeSTT([]), llm=make_llm(), tts=tts, vad=FakeVAD(), turn_detector=FakeEOU())
    agent = Agent("You are a weather assistant.", tools=[get_weather])

    async with Conversation(agent, pipeline) as conv:
        await asyncio.wait_for(conv.session.send_text("What's the weather in Paris?"), 8)

    assert cities == ["Paris"], "the tool must run exactly once, with the streamed arguments"
    assert conv.tool_calls() == [("get_weather", "sunny and 21 degrees in Paris", False)]
    assert "It is sunny and 21 degrees in Paris." in " ".join(tts.spoken)
    assert conv.errors() == []

    first, second = (r.body for r in rest.requests)
    assert first["systemInstruction"] == {"parts": [{"text": "You are a weather assistant."}]}
    assert first["contents"] == [{"role": "user", "parts": [{"text": "What's the weather in Paris?"}]}]
    (declaration,) = first["tools"][0]["functionDeclarations"]
    assert declaration["name"] == "get_weather" and declaration["description"] == "Current weather in a city."
    assert declaration["parameters"]["properties"] == {"city": {"type": "string"}}
    # The follow-up carries the call and its result, under the API's id, in alternating turns.
    assert [c["role"] for c in second["contents"]] == ["user", "model", "user"]
    call = next(p["functionCall"] for p in second["contents"][1]["parts"] if "functionCall" in p)
    assert call == {"name": "get_weather", "args": {"city": "Paris"}, "id": "fc_get_weather_0"}
    (answer,) = second["contents"][2]["parts"]
    assert answer["functionResponse"]["id"] == "fc_get_weather_0"
    assert json.dumps(answer).count("sunny and 21 degrees in Paris") == 1


async def test_an_overloaded_gemini_falls_back_to_the_next_llm(
    rest: RestServer, make_llm: Callable[..., GeminiLLM]
) -> None:
    rest.queue(ErrorReply(503, "UNAVAILABLE", "The model is overloaded. Please try again later."))
    tts = FakeTTS(seconds_per_char=0.002)
    llm = FallbackLLM([make_llm(), FakeLLM(["The backup model answers."])])
    pipeline = CascadingPipeline(stt=FakeSTT([]), llm=llm, tts=tts, vad=FakeVAD(), turn_detector=FakeEOU())
    async with Conversation(Agent("Be brief."), pipeline) as conv:
        await asyncio.wait_for(conv.session.send_text("Hello?"), 8)
    assert "The backup model answers." in " ".join(tts.spoken)
    assert len(rest.requests) == 1 and conv.agent_turns() == ["The backup model answers."]
