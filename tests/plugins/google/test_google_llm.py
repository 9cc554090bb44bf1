"""GeminiLLM against the local REST server: what it sends and what it makes of the stream."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from gemini_rest_server import API_KEY, MODEL, RestServer, StreamReply, call_chunk, sign, text_chunks

from vocalis.chat import ChatContext, ChatRole
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.llm import ChatChunk
from vocalis.tools.function import function_tool
from vocalis_google import GeminiLLM
from vocalis_google.contents import CONVERSATION_START, SKIP_SIGNATURE

Make = Callable[..., GeminiLLM]


@function_tool
async def get_weather(city: str, unit: str = "celsius") -> str:
    """Current weather in a city."""
    return f"sunny in {city}"


def context(*turns: tuple[str, str]) -> ChatContext:
    ctx = ChatContext()
    for role, text in turns:
        ctx.add_message(ChatRole(role), text)
    return ctx


async def collect(llm: GeminiLLM, ctx: ChatContext, **kwargs: Any) -> list[ChatChunk]:
    return [chunk async for chunk in llm.chat(ctx, **kwargs)]


async def test_streams_text_then_usage_and_sends_the_documented_request(rest: RestServer, make_llm: Make) -> None:
    rest.queue(StreamReply(text_chunks(["Hi", " there", "!"], prompt_tokens=9)))
    llm = make_llm(temperature=0.3, thinking_budget=0, max_output_tokens=200)
    chunks = await collect(llm, context(("system", "Be brief."), ("user", "Hello?")))

    assert [c.text for c in chunks] == ["Hi", " there", "!", ""]
    assert chunks[-1].usage is not None and (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (
        9,
        3,
    )
    [request] = rest.requests
    assert request.path == f"/v1beta/models/{MODEL}:streamGenerateContent" and request.query == {"alt": "sse"}
    assert request.headers["x-goog-api-key"] == API_KEY and "key" not in request.query
    assert request.body == {
        "contents": [{"role": "user", "parts": [{"text": "Hello?"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"maxOutputTokens": 200, "temperature": 0.3, "thinkingConfig": {"thinkingBudget": 0}},
    }


async def test_key_from_the_environment_and_a_greeting_first(
    rest: RestServer, make_llm: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", API_KEY)
    llm = make_llm(api_key=None, model="gemini-2.5-flash-lite")
    await collect(llm, context(("assistant", "Hello! How can I help?"), ("user", "Hi."), ("user", "Weather?")))
    [request] = rest.requests
    assert request.path == "/v1beta/models/gemini-2.5-flash-lite:streamGenerateContent"
    # The model spoke first: a placeholder user turn opens, same-role turns merge.
    assert request.body["contents"] == [
        {"role": "user", "parts": [{"text": CONVERSATION_START}]},
        {"role": "model", "parts": [{"text": "Hello! How can I help?"}]},
        {"role": "user", "parts": [{"text": "Hi."}, {"text": "Weather?"}]},
    ]


async def test_tool_declarations_calls_and_the_follow_up(rest: RestServer, make_llm: Make) -> None:
    rest.queue(
        StreamReply(
            [
                call_chunk(
                    [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})], text="Checking.", ids=True
                )
            ]
        )
    )
    llm = make_llm()
    ctx = context(("user", "Weather in Paris and Rome?"))
    chunks = await collect(llm, ctx, tools=[get_weather])

    calls = [call for chunk in chunks for call in chunk.tool_calls]
    assert [(c.call_id, c.name, json.loads(c.arguments)) for c in calls] == [
        ("fc_get_weather_0", "get_weather", {"city": "Paris"}),
        ("fc_get_weather_1", "get_weather", {"city": "Rome"}),
    ]
    assert chunks[0].text == "Checking."
    (tool,) = rest.requests[0].body["tools"]
    assert tool == {
        "functionDeclarations": [
            {
                "name": "get_weather",
                "description": "Current weather in a city.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                    "required": ["city"],
                },
            }
        ]
    }
    assert rest.requests[0].body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}

    ctx.add_message(ChatRole.ASSISTANT, "Checking.")
    for call in calls:
        ctx.add_function_call(call.call_id, call.name, call.arguments)
    ctx.add_function_output(calls[0].call_id, "get_weather", '{"sky": "sunny"}')
    ctx.add_function_output(calls[1].call_id, "get_weather", "no data", is_error=True)
    await collect(llm, ctx, tools=[get_weather])
    model, answers = rest.requests[1].body["contents"][1:]
    assert model == {
        "role": "model",
        "parts": [
            {"text": "Checking."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "fc_get_weather_0"}},
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}, "id": "fc_get_weather_1"}},
        ],
    }
    assert answers == {
        "role": "user",
        "parts": [
            {
                "functionResponse": {
                    "name": "get_weather",
                    "response": {"output": {"sky": "sunny"}},
                    "id": "fc_get_weather_0",
                }
            },
            {"functionResponse": {"name": "get_weather", "response": {"error": "no data"}, "id": "fc_get_weather_1"}},
        ],
    }


async def test_thought_signatures_go_back_and_foreign_calls_get_the_documented_one(
    rest: RestServer, make_llm: Make
) -> None:
    rest.strict_signatures = True
    signature = sign("opaque-reasoning-state")
    rest.queue(StreamReply([call_chunk([("get_weather", {"city": "Oslo"})], signature=signature)]))
    llm = make_llm()
    ctx = context(("user", "Weather in Oslo?"))
    [call] = [c for chunk in await collect(llm, ctx, tools=[get_weather]) for c in chunk.tool_calls]
    assert call.call_id.startswith("call_")  # the API gave no id: ours stays out of the request
    ctx.add_function_call(call.call_id, call.name, call.arguments)
    ctx.add_function_output(call.call_id, call.name, "sunny")
    # A call made by another model before: no signature of its own.
    ctx.add_message(ChatRole.USER, "And Bergen?")
    ctx.add_function_call("call_other_llm", "get_weather", '{"city": "Bergen"}')
    ctx.add_function_output("call_other_llm", "get_weather", "rain")
    ctx.add_message(ChatRole.USER, "Thanks.")
    await collect(llm, ctx, tools=[get_weather])

    contents = rest.requests[1].body["contents"]
    first, second = (c["parts"][0] for c in contents if c["role"] == "model")
    assert first == {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": signature}
    assert second["thoughtSignature"] == SKIP_SIGNATURE and "id" not in second["functionCall"]


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("required", {"mode": "ANY"}),
        ("none", {"mode": "NONE"}),
        ("get_weather", {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ],
)
async def test_tool_choice(rest: RestServer, make_llm: Make, choice: str, config: dict[str, Any]) -> None:
    await collect(make_llm(), context(("user", "Hi")), tools=[get_weather], tool_choice=choice)
    assert rest.requests[0].body["toolConfig"] == {"functionCallingConfig": config}


async def test_bad_requests_are_refused_before_sending(rest: RestServer, make_llm: Make) -> None:
    llm = make_llm()
    for ctx, kwargs in [
        (context(("user", "  ")), {}),
        (context(("user", "Hi")), {"tools": [get_weather], "tool_choice": "launch"}),
        (context(("user", "Hi")), {"tool_choice": "required"}),
    ]:
        with pytest.raises(ProviderError) as caught:
            await collect(llm, ctx, **kwargs)
        assert caught.value.kind is ErrorKind.BAD_REQUEST and not caught.value.recoverable
    assert rest.requests == []


async def test_thoughts_are_not_spoken_and_a_pending_tool_is_answered(rest: RestServer, make_llm: Make) -> None:
    thought = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Let me think", "thought": True}]}}]}
    rest.queue(StreamReply([thought, *text_chunks(["Okay."])]))
    ctx = context(("user", "Find a flight."))
    ctx.add_function_call("call_1", "search_flights", '{"city": "Oslo"}')
    ctx.add_message(ChatRole.USER, "Never mind.")
    chunks = await collect(make_llm(), ctx.for_request())
    assert "".join(c.text for c in chunks) == "Okay."
    answer = rest.requests[0].body["contents"][2]["parts"][0]["functionResponse"]
    assert answer["name"] == "search_flights" and "still running" in answer["response"]["output"]


async def test_connections_are_reused_between_replies(rest: RestServer, make_llm: Make) -> None:
    llm = make_llm()
    for _ in range(3):
        await collect(llm, context(("user", "Hi")))
    await llm.aclose()
    await llm.aclose()  # idempotent
    assert len({r.client_port for r in rest.requests}) == 1  # one pooled connection
