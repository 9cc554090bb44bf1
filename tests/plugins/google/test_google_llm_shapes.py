"""GeminiLLM fed replies shaped like the real service's, field for field.

The shapes follow the ``GenerateContentResponse`` reference (ai.google.dev/api/generate-content:
``candidates[].content.parts[]`` with ``text``, ``thought``, ``thoughtSignature``,
``functionCall{name,args,id}``; ``finishReason``; ``promptFeedback``;
``usageMetadata`` with ``thoughtsTokenCount`` and ``promptTokensDetails``;
``modelVersion``, ``responseId``), the thought-signature guide (Gemini 3 ends a
text reply on an empty part that carries the signature) and the error
reference (``RetryInfo`` in ``details``; bodies some gateways wrap in a list).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from gemini_rest_server import ErrorReply, JsonReply, RestServer, StreamReply, sign

from vocalis.chat import ChatContext, ChatRole
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.llm import ChatChunk
from vocalis.tools.function import function_tool
from vocalis_google import GeminiLLM

Make = Callable[..., GeminiLLM]
VERSION = {"modelVersion": "gemini-3-flash-preview", "responseId": "mQ0xaJ-7Lq2vz7IP5cH5gQk"}


@function_tool
async def get_time(city: str = "here") -> str:
    """The time."""
    return "noon"


def hello() -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(ChatRole.USER, "Hello?")
    return ctx


def candidate(parts: list[dict[str, Any]] | None, finish: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"index": 0}
    if parts is not None:
        found["content"] = {"role": "model", "parts": parts}
    if finish:
        found["finishReason"] = finish
    return {"candidates": [found], **VERSION}


async def collect(llm: GeminiLLM, **kwargs: Any) -> list[ChatChunk]:
    return [chunk async for chunk in llm.chat(hello(), **kwargs)]


async def fail(llm: GeminiLLM, **kwargs: Any) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await collect(llm, **kwargs)
    return caught.value


async def test_a_thinking_models_reply_with_a_trailing_signature_and_a_usage_only_chunk(
    rest: RestServer, make_llm: Make
) -> None:
    details = [{"modality": "TEXT", "tokenCount": 8}]
    rest.queue(
        StreamReply(
            [
                {"promptFeedback": {"safetyRatings": []}, "usageMetadata": {"promptTokenCount": 8}, **VERSION},
                candidate([{"text": "**Greeting**\n\nThe user says hello.", "thought": True}]),
                candidate([{"text": "Hello"}]),
                candidate([{"text": " there."}, {"text": "", "thoughtSignature": sign("sig-text")}], "STOP"),
                {"candidates": [], **VERSION},
                {
                    "usageMetadata": {
                        "promptTokenCount": 8,
                        "candidatesTokenCount": 3,
                        "thoughtsTokenCount": 21,
                        "totalTokenCount": 32,
                        "promptTokensDetails": details,
                    },
                    **VERSION,
                },
            ]
        )
    )
    chunks = await collect(make_llm())
    assert [c.text for c in chunks] == ["Hello", " there.", ""]  # no thought, no empty chunk
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (8, 24)


async def test_calls_without_args_with_null_args_and_with_ids(rest: RestServer, make_llm: Make) -> None:
    rest.queue(
        StreamReply(
            [
                candidate([{"functionCall": {"name": "get_time"}, "thoughtSignature": sign("sig-1")}]),
                candidate([{"functionCall": {"name": "get_time", "args": None, "id": "fc-7"}}]),
                candidate([{"functionCall": {"name": "get_time", "args": {"city": "Oslo"}}}], "STOP"),
                {"usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 9}, **VERSION},
            ]
        )
    )
    chunks = await collect(make_llm(), tools=[get_time])
    calls = [call for chunk in chunks for call in chunk.tool_calls]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_time", {}),
        ("get_time", {}),
        ("get_time", {"city": "Oslo"}),
    ]
    assert calls[1].call_id == "fc-7" and len({c.call_id for c in calls}) == 3


async def test_a_safety_stop_after_words_keeps_them(rest: RestServer, make_llm: Make) -> None:
    ratings = [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "MEDIUM", "blocked": True}]
    stopped = candidate([{"text": " and then"}], "SAFETY")
    stopped["candidates"][0]["safetyRatings"] = ratings
    rest.queue(StreamReply([candidate([{"text": "Well,"}]), stopped]))
    assert "".join(c.text for c in await collect(make_llm())) == "Well, and then"


@pytest.mark.parametrize(
    ("finish", "kind", "recoverable"),
    [
        ("SAFETY", ErrorKind.BAD_REQUEST, False),
        ("PROHIBITED_CONTENT", ErrorKind.BAD_REQUEST, False),
        ("RECITATION", ErrorKind.BAD_REQUEST, False),
        ("MALFORMED_FUNCTION_CALL", ErrorKind.PROTOCOL, True),
        ("UNEXPECTED_TOOL_CALL", ErrorKind.PROTOCOL, True),
    ],
)
async def test_a_reply_stopped_before_saying_anything_is_an_error(
    rest: RestServer, make_llm: Make, finish: str, kind: ErrorKind, recoverable: bool
) -> None:
    stopped = candidate(None, finish)
    stopped["candidates"][0]["content"] = {}  # what the service sends: no parts at all
    stopped["candidates"][0]["finishMessage"] = "Malformed function call: print(get_time())"
    rest.queue(StreamReply([stopped, {"usageMetadata": {"promptTokenCount": 5}, **VERSION}]))
    error = await fail(make_llm(), tools=[get_time])
    assert (error.kind, error.recoverable) == (kind, recoverable) and finish in str(error)


async def test_an_empty_stop_is_an_empty_reply(rest: RestServer, make_llm: Make) -> None:
    rest.queue(StreamReply([candidate([], "STOP"), {"usageMetadata": {"promptTokenCount": 5}}]))
    chunks = await collect(make_llm())
    assert [c.text for c in chunks] == [""] and chunks[0].usage is not None


async def test_an_internal_error_event_mid_stream(rest: RestServer, make_llm: Make) -> None:
    error_event = {
        "error": {
            "code": 500,
            "message": "An internal error has occurred. Please retry or report in the troubleshooting guide",
            "status": "INTERNAL",
        }
    }
    rest.queue(StreamReply([candidate([{"text": "Hel"}]), error_event]))
    error = await fail(make_llm())
    assert (error.kind, error.recoverable) == (ErrorKind.SERVER, True) and "INTERNAL" in str(error)


def quota(delay: str) -> JsonReply:
    details = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "requests"}]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
    ]
    body = {"error": {"code": 429, "message": "You exceeded your current quota.", "status": "RESOURCE_EXHAUSTED",
                      "details": details}}  # fmt: skip
    return JsonReply(429, body)


async def test_a_quota_that_resets_later_is_not_waited_for(rest: RestServer, make_llm: Make) -> None:
    rest.queue(quota("37s"))
    error = await fail(make_llm(max_retries=3))
    assert (error.kind, error.recoverable) == (ErrorKind.RATE_LIMIT, True)
    assert len(rest.requests) == 1  # a fallback can take over at once


async def test_a_short_retry_delay_is_waited_for(rest: RestServer, make_llm: Make) -> None:
    rest.queue(quota("0.05s"))
    text = "".join(c.text for c in await collect(make_llm(max_retries=1)))
    assert text and len(rest.requests) == 2


async def test_an_error_body_wrapped_in_a_list(rest: RestServer, make_llm: Make) -> None:
    body = [{"error": {"code": 400, "message": "API key expired. Please renew the API key.",
                       "status": "INVALID_ARGUMENT", "details": [{"reason": "API_KEY_EXPIRED"}]}}]  # fmt: skip
    rest.queue(JsonReply(400, body))
    error = await fail(make_llm())
    assert (error.kind, error.recoverable) == (ErrorKind.AUTH, False) and "expired" in str(error)


async def test_a_gateway_answering_with_one_json_array(rest: RestServer, make_llm: Make) -> None:
    rest.queue(JsonReply(200, [candidate([{"text": "Hi"}]), candidate([{"text": " you."}], "STOP")]))
    assert [c.text for c in await collect(make_llm())] == ["Hi", " you.", ""]


async def test_a_blocked_prompt_without_candidates(rest: RestServer, make_llm: Make) -> None:
    feedback = {"blockReason": "PROHIBITED_CONTENT", "safetyRatings": []}
    rest.queue(StreamReply([{"promptFeedback": feedback, "usageMetadata": {"promptTokenCount": 4}, **VERSION}]))
    error = await fail(make_llm())
    assert (error.kind, error.recoverable) == (ErrorKind.BAD_REQUEST, False) and "PROHIBITED_CONTENT" in str(error)


async def test_an_overloaded_model_then_success(rest: RestServer, make_llm: Make) -> None:
    rest.queue(ErrorReply(503, "UNAVAILABLE", "The model is overloaded. Please try again later."))
    assert "".join(c.text for c in await collect(make_llm(max_retries=1)))
