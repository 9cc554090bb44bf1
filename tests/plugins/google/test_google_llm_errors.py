"""GeminiLLM failures: each sorted by type into a ProviderError with the right kind and recoverable."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from gemini_rest_server import API_KEY, ErrorReply, RestServer, StreamReply, text_chunks

from vocalis.chat import ChatContext, ChatRole
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis_google import GeminiLLM

Make = Callable[..., GeminiLLM]


def hello() -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(ChatRole.USER, "Hello?")
    return ctx


async def fail(llm: GeminiLLM) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        async for _ in llm.chat(hello()):
            pass
    assert caught.value.provider == "llm:google"
    return caught.value


@pytest.mark.parametrize(
    ("reply", "kind", "recoverable"),
    [
        (ErrorReply(400, "INVALID_ARGUMENT", "Request contains an invalid argument."), ErrorKind.BAD_REQUEST, False),
        (ErrorReply(400, "FAILED_PRECONDITION", "User location is not supported."), ErrorKind.BAD_REQUEST, False),
        (ErrorReply(403, "PERMISSION_DENIED", "The caller does not have permission"), ErrorKind.AUTH, False),
        (
            ErrorReply(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta"),
            ErrorKind.BAD_REQUEST,
            False,
        ),
        (ErrorReply(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota."), ErrorKind.RATE_LIMIT, True),
        (ErrorReply(500, "INTERNAL", "An internal error has occurred."), ErrorKind.SERVER, True),
        (ErrorReply(503, "UNAVAILABLE", "The model is overloaded."), ErrorKind.SERVER, True),
        (ErrorReply(504, "DEADLINE_EXCEEDED", "Deadline expired."), ErrorKind.TIMEOUT, True),
    ],
)
async def test_http_errors_by_status(
    rest: RestServer, make_llm: Make, reply: ErrorReply, kind: ErrorKind, recoverable: bool
) -> None:
    rest.queue(reply)
    error = await fail(make_llm())
    assert (error.kind, error.recoverable) == (kind, recoverable)
    assert reply.api_status in str(error) and reply.message in str(error)


async def test_a_wrong_key_is_an_auth_error_though_the_status_is_400(make_llm: Make) -> None:
    error = await fail(make_llm(api_key="AIza-wrong-key-000000000000000"))
    assert (error.kind, error.recoverable) == (ErrorKind.AUTH, False)
    assert "wrong-key" not in str(error)


async def test_no_key_names_the_variables(rest: RestServer) -> None:
    llm = GeminiLLM(base_url=rest.url, _env_file=None)
    error = await fail(llm)
    assert (error.kind, error.recoverable) == (ErrorKind.AUTH, False)
    assert "VOCALIS_LLM_GOOGLE_API_KEY" in str(error) and "GOOGLE_API_KEY" in str(error)
    assert rest.requests == []


async def test_a_429_is_retried_when_allowed(rest: RestServer, make_llm: Make) -> None:
    rest.queue(ErrorReply(429, "RESOURCE_EXHAUSTED", "slow down"), ErrorReply(503, "UNAVAILABLE", "overloaded"))
    text = "".join([c.text async for c in make_llm(max_retries=2).chat(hello())])
    assert text and len(rest.requests) == 3


async def test_a_drop_mid_stream_is_a_connection_error(rest: RestServer, make_llm: Make) -> None:
    rest.queue(StreamReply(text_chunks(["Hel", "lo"], finish="STOP")[:1], then="drop"))
    error = await fail(make_llm())
    assert (error.kind, error.recoverable) == (ErrorKind.CONNECTION, True)


async def test_a_stall_mid_stream(rest: RestServer, make_llm: Make) -> None:
    rest.queue(StreamReply(text_chunks(["Hel", "lo"])[:1], then="silent"))
    got: list[str] = []
    with pytest.raises(ProviderError) as caught:
        async for chunk in make_llm(timeout=1.0).chat(hello()):
            got.append(chunk.text)
    assert got == ["Hel"]
    assert (caught.value.kind, caught.value.recoverable) == (ErrorKind.STALLED, True)


async def test_the_stream_ending_without_a_finish_reason_is_a_protocol_error(rest: RestServer, make_llm: Make) -> None:
    rest.queue(StreamReply(text_chunks(["Hel", "lo"])[:1]))
    error = await fail(make_llm())
    assert (error.kind, error.recoverable) == (ErrorKind.PROTOCOL, True)


async def test_an_error_object_mid_stream(rest: RestServer, make_llm: Make) -> None:
    error_event = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    rest.queue(StreamReply([text_chunks(["Hel", "lo"])[0], error_event]))
    error = await fail(make_llm())
    assert (error.kind, error.recoverable) == (ErrorKind.SERVER, True) and "UNAVAILABLE" in str(error)


async def test_a_blocked_prompt(rest: RestServer, make_llm: Make) -> None:
    rest.queue(StreamReply([{"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}}]))
    error = await fail(make_llm())
    assert (error.kind, error.recoverable) == (ErrorKind.BAD_REQUEST, False) and "SAFETY" in str(error)


async def test_nothing_listening_is_a_connection_error(make_llm: Make) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await fail(make_llm(base_url=f"http://127.0.0.1:{port}"))
    assert (error.kind, error.recoverable) == (ErrorKind.CONNECTION, True)


async def test_a_gateway_echoing_the_key_leaks_it_nowhere(rest: RestServer, make_llm: Make) -> None:
    gateway_key = "gw-5e2f7a0b19c3d4e8"
    rest.queue(ErrorReply(401, "UNAUTHENTICATED", f"bad credentials: x-goog-api-key={API_KEY} gateway {gateway_key}"))
    error = await fail(make_llm(headers={"X-Gateway-Key": gateway_key}))
    assert error.kind is ErrorKind.AUTH
    assert API_KEY not in str(error) and gateway_key not in str(error)
    assert rest.requests[0].headers["x-gateway-key"] == gateway_key
