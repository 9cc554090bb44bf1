"""The ``openai`` LLM against a scripted server (exact request shapes, every
streaming style of tool call, errors) and a real llama.cpp server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from chat_server import ChatServer, Reply

from vocalis.chat import ChatContext, ChatRole
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.llm import ChatChunk
from vocalis.tools.function import function_tool
from vocalis_openai import OpenAILLM

KEY = "test-key"


@function_tool
async def get_weather(city: str, unit: str = "celsius") -> str:
    """Current weather in a city."""
    return f"sunny in {city}"


def _ctx(question: str = "Hi?") -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(ChatRole.SYSTEM, "Be brief.")
    ctx.add_message(ChatRole.USER, question)
    return ctx


def _llm(server: ChatServer, **settings: Any) -> OpenAILLM:
    return OpenAILLM(base_url=server.base_url, api_key=KEY, model="test-model", _env_file=None, **settings)


async def _collect(llm: OpenAILLM, ctx: ChatContext, **kwargs: Any) -> list[ChatChunk]:
    return [chunk async for chunk in llm.chat(ctx, **kwargs)]


@pytest.fixture
async def server() -> Any:
    async with ChatServer(KEY) as srv:
        yield srv


async def test_streams_text_and_usage(server: ChatServer) -> None:
    server.script.append(Reply(text="It is sunny and warm today."))
    llm = _llm(server, temperature=0.3, max_tokens=50, seed=4)
    chunks = await _collect(llm, _ctx())
    await llm.aclose()
    assert "".join(c.text for c in chunks) == "It is sunny and warm today."
    assert len([c for c in chunks if c.text]) > 3  # streamed, not one blob
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 11
    sent = server.requests[0]
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.body["model"] == "test-model" and sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi?"},
    ]
    assert (sent.body["temperature"], sent.body["max_tokens"], sent.body["seed"]) == (0.3, 50, 4)
    assert "tools" not in sent.body and "max_completion_tokens" not in sent.body


@pytest.mark.parametrize("style", ["openai", "ollama", "no-index"])
async def test_parallel_tool_calls_in_every_streaming_style(server: ChatServer, style: str) -> None:
    calls = [("get_weather", '{"city": "Paris"}'), ("get_weather", '{"city": "Rome", "unit": "celsius"}')]
    server.script.append(Reply(text="Let me check.", tool_calls=calls, style=style))  # type: ignore[arg-type]
    llm = _llm(server, parallel_tool_calls=True)
    chunks = await _collect(llm, _ctx("Weather in Paris and Rome?"), tools=[get_weather], tool_choice="auto")
    await llm.aclose()
    got = chunks[-1].tool_calls
    assert [(c.name, json.loads(c.arguments)) for c in got] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome", "unit": "celsius"}),
    ]
    assert [c.call_id for c in got] == ["call_0", "call_1"]
    body = server.requests[0].body
    assert body["tool_choice"] == "auto" and body["parallel_tool_calls"] is True
    (tool,) = body["tools"]
    assert tool["type"] == "function" and tool["function"]["name"] == "get_weather"
    assert tool["function"]["description"] == "Current weather in a city."
    params = tool["function"]["parameters"]
    assert params["type"] == "object" and params["required"] == ["city"]


async def test_tool_history_is_sent_in_the_reference_shape(server: ChatServer) -> None:
    ctx = _ctx("Weather in Paris?")
    ctx.add_message(ChatRole.ASSISTANT, "Checking.")
    ctx.add_function_call("call_9", "get_weather", '{"city": "Paris"}')
    ctx.add_function_output("call_9", "get_weather", "sunny")
    llm = _llm(server)
    await _collect(llm, ctx, tools=[get_weather])
    await llm.aclose()
    messages = server.requests[0].body["messages"]
    assert messages[2] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ],
    }
    assert messages[3] == {"role": "tool", "tool_call_id": "call_9", "content": "sunny"}


async def test_malformed_arguments_pass_through_for_the_session_to_report(server: ChatServer) -> None:
    server.script.append(Reply(tool_calls=[("get_weather", '{"city": "Par')]))
    llm = _llm(server)
    chunks = await _collect(llm, _ctx(), tools=[get_weather])
    await llm.aclose()
    assert chunks[-1].tool_calls[0].arguments == '{"city": "Par'


async def test_developer_role_and_max_tokens_field_are_configurable(server: ChatServer) -> None:
    ctx = ChatContext()
    ctx.add_message(ChatRole.DEVELOPER, "Rules.")
    ctx.add_message(ChatRole.USER, "Hi")
    llm = _llm(
        server,
        developer_role="developer",
        max_tokens=9,
        max_tokens_field="max_completion_tokens",
        extra_body={"top_k": 5},
        include_usage=False,
    )
    await _collect(llm, ctx)
    await llm.aclose()
    body = server.requests[0].body
    assert body["messages"][0]["role"] == "developer"
    assert body["max_completion_tokens"] == 9 and "max_tokens" not in body
    assert body["top_k"] == 5 and "stream_options" not in body


# Failures are asserted by kind, recoverability, provider and the words we (or
# the test server) wrote, never by text the SDK or its HTTP library produces.
@pytest.mark.parametrize(
    ("status", "recoverable", "kind"),
    [
        (400, False, ErrorKind.BAD_REQUEST),
        (401, False, ErrorKind.AUTH),
        (403, False, ErrorKind.AUTH),
        (404, False, ErrorKind.BAD_REQUEST),
        (422, False, ErrorKind.BAD_REQUEST),
        (429, True, ErrorKind.RATE_LIMIT),
        (500, True, ErrorKind.SERVER),
        (503, True, ErrorKind.SERVER),
    ],
)
async def test_http_errors_name_the_provider(
    server: ChatServer, status: int, recoverable: bool, kind: ErrorKind
) -> None:
    server.script.append(Reply(status=status))
    llm = _llm(server, max_retries=0)
    with pytest.raises(ProviderError) as info:
        await _collect(llm, _ctx())
    await llm.aclose()
    error = info.value
    assert error.provider == "llm:openai" and error.recoverable is recoverable and error.kind is kind
    assert f"HTTP {status}" in str(error) and f"scripted status {status}" in str(error)


async def test_a_wrong_key_is_not_recoverable(server: ChatServer) -> None:
    llm = OpenAILLM(base_url=server.base_url, api_key="wrong", _env_file=None)
    with pytest.raises(ProviderError, match="Incorrect API key") as info:  # the server's words
        await _collect(llm, _ctx())
    await llm.aclose()
    assert info.value.kind is ErrorKind.AUTH and not info.value.recoverable
    assert len(server.requests) == 1  # a 401 is not retried
    assert "wrong" not in repr(llm)  # the key is a secret


async def test_dropped_connection_mid_stream_is_an_error_not_a_hang(server: ChatServer) -> None:
    server.script.append(Reply(text="A long answer that will not arrive whole.", drop_after=3))
    llm = _llm(server, max_retries=0)
    texts: list[str] = []
    with pytest.raises(ProviderError) as info:
        async for chunk in llm.chat(_ctx()):
            texts.append(chunk.text)
    await llm.aclose()
    error = info.value
    assert error.kind is ErrorKind.CONNECTION and error.recoverable and "".join(texts)
    assert str(error).startswith("llm:openai: connection lost mid-stream")


async def test_a_stream_that_goes_quiet_stalls(server: ChatServer) -> None:
    server.script.append(Reply(hang=True))  # headers, then nothing
    llm = _llm(server, timeout=0.3, max_retries=0)
    with pytest.raises(ProviderError) as info:
        await asyncio.wait_for(_collect(llm, _ctx()), 10)
    await llm.aclose()
    assert info.value.kind is ErrorKind.STALLED and info.value.recoverable
    assert str(info.value) == "llm:openai: the stream stalled: nothing arrived for 0.3 s"


async def test_a_silent_server_times_out(server: ChatServer) -> None:
    server.script.append(Reply(silent=True))  # not even the headers
    llm = _llm(server, timeout=0.3, max_retries=0)
    with pytest.raises(ProviderError) as info:
        await asyncio.wait_for(_collect(llm, _ctx()), 10)
    await llm.aclose()
    assert info.value.kind is ErrorKind.TIMEOUT and info.value.recoverable
    assert "/chat/completions timed out: no answer within 0.3 s" in str(info.value)


async def test_a_malformed_event_is_a_protocol_error(server: ChatServer) -> None:
    server.script.append(Reply(text="Some words first.", garbage_after=2))
    llm = _llm(server, max_retries=0)
    with pytest.raises(ProviderError) as info:
        await _collect(llm, _ctx())
    await llm.aclose()
    assert info.value.kind is ErrorKind.PROTOCOL and info.value.recoverable
    assert str(info.value).startswith("llm:openai: malformed stream event")


@pytest.mark.parametrize(
    ("code", "recoverable", "kind"),
    [
        ("server_error", True, ErrorKind.SERVER),
        ("rate_limit_exceeded", True, ErrorKind.RATE_LIMIT),
        ("invalid_request_error", False, ErrorKind.BAD_REQUEST),
        ("something_new", True, ErrorKind.UNKNOWN),
    ],
)
async def test_an_error_object_mid_stream(server: ChatServer, code: str, recoverable: bool, kind: ErrorKind) -> None:
    server.script.append(Reply(text="Half an answer.", error_after=(2, code, "scripted failure")))
    llm = _llm(server, max_retries=0)
    with pytest.raises(ProviderError) as info:
        await _collect(llm, _ctx())
    await llm.aclose()
    assert info.value.kind is kind and info.value.recoverable is recoverable
    assert str(info.value) == "llm:openai: error event mid-stream: scripted failure"


async def test_nothing_listening_is_recoverable() -> None:
    llm = OpenAILLM(base_url="http://127.0.0.1:9/v1", api_key=KEY, max_retries=0, _env_file=None)
    with pytest.raises(ProviderError) as info:
        await _collect(llm, _ctx())
    await llm.aclose()
    assert info.value.kind is ErrorKind.CONNECTION and info.value.recoverable
    assert str(info.value).startswith("llm:openai: connection failed to http://127.0.0.1:9/v1/chat/completions")


async def test_closing_midway_closes_the_response(server: ChatServer) -> None:
    server.script.append(Reply(text="word " * 200, delay=0.01))
    llm = _llm(server)
    stream = llm.chat(_ctx())
    async for _ in stream:
        break
    await stream.aclose()  # type: ignore[attr-defined]
    for _ in range(200):  # the server notices the closed socket on its next write
        if server.disconnects:
            break
        await asyncio.sleep(0.01)
    await llm.aclose()
    assert server.disconnects == 1


async def test_empty_context_is_refused_without_a_request(server: ChatServer) -> None:
    llm = _llm(server)
    with pytest.raises(ProviderError, match="empty") as info:
        await _collect(llm, ChatContext())
    assert info.value.kind is ErrorKind.BAD_REQUEST
    assert not info.value.recoverable and not server.requests


async def test_instructions_alone_are_enough_to_speak_first(server: ChatServer) -> None:
    # An agent that greets the user first has only instructions so far.
    server.script.append(Reply(text="Hi, how can I help?"))
    llm = _llm(server)
    ctx = ChatContext()
    ctx.add_message(ChatRole.SYSTEM, "Greet the user.")
    assert "".join(c.text for c in await _collect(llm, ctx)) == "Hi, how can I help?"
    await llm.aclose()
    assert server.requests[0].body["messages"] == [{"role": "system", "content": "Greet the user."}]


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_LLM_OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")
    monkeypatch.setenv("VOCALIS_LLM_OPENAI_MODEL", "llama")
    monkeypatch.setenv("VOCALIS_LLM_OPENAI_API_KEY", "sk-secret")
    llm = OpenAILLM(_env_file=None)
    assert str(llm.client.base_url) == "http://127.0.0.1:8080/v1/" and llm.model_name == "llama"
    assert llm.client.api_key == "sk-secret" and "sk-secret" not in repr(llm.settings)


def test_openai_itself_gets_max_completion_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    llm = OpenAILLM(api_key="k", max_tokens=5, _env_file=None)
    assert "max_completion_tokens" in llm._request([{"role": "user", "content": "x"}], (), None)


async def test_prewarm_connects_and_checks_the_key(server: ChatServer) -> None:
    llm = _llm(server)
    await llm.prewarm()
    assert len(server.model_lists) == 1 and not server.requests
    assert server.model_lists[0].headers["Authorization"] == f"Bearer {KEY}"
    await llm.aclose()
    bad = OpenAILLM(base_url=server.base_url, api_key="wrong", _env_file=None)
    with pytest.raises(ProviderError, match="HTTP 401") as info:
        await bad.prewarm()
    await bad.aclose()
    assert info.value.kind is ErrorKind.AUTH and not info.value.recoverable


async def test_prewarm_accepts_a_server_without_a_models_endpoint() -> None:
    from aiohttp import web

    app = web.Application()  # answers 404 to everything
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    llm = OpenAILLM(base_url=f"http://127.0.0.1:{port}/v1", _env_file=None)
    try:
        await llm.prewarm()
    finally:
        await llm.aclose()
        await runner.cleanup()


async def test_prewarm_of_an_unreachable_server_names_the_url() -> None:
    llm = OpenAILLM(base_url="http://127.0.0.1:9/v1", _env_file=None)
    with pytest.raises(ProviderError, match="connection failed to http://127.0.0.1:9/") as info:
        await llm.prewarm()
    await llm.aclose()
    assert info.value.kind is ErrorKind.CONNECTION and info.value.recoverable


async def test_openai_itself_without_a_key_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    llm = OpenAILLM(_env_file=None)
    with pytest.raises(ProviderError, match="no API key: set VOCALIS_LLM_OPENAI_API_KEY") as info:
        await _collect(llm, _ctx())
    assert info.value.kind is ErrorKind.AUTH and not info.value.recoverable


def test_headers_are_kept_out_of_reprs_and_urls_need_a_scheme() -> None:
    llm = OpenAILLM(base_url="http://h/v1", headers={"Authorization": "Bearer sk-HEADER"}, _env_file=None)
    assert "sk-HEADER" not in repr(llm) and "sk-HEADER" not in repr(llm.settings)
    with pytest.raises(ValueError, match="needs a scheme, e.g. http://127.0.0.1:8080/v1"):
        OpenAILLM(base_url="127.0.0.1:8080/v1", _env_file=None)


async def test_a_wrong_path_names_the_url(server: ChatServer) -> None:
    llm = OpenAILLM(base_url=server.base_url.replace("/v1", "/v2"), api_key=KEY, _env_file=None)
    with pytest.raises(ProviderError, match=r"HTTP 404 from http://127\.0\.0\.1:\d+/v2/chat/completions") as info:
        await _collect(llm, _ctx())
    await llm.aclose()
    assert info.value.kind is ErrorKind.BAD_REQUEST and not info.value.recoverable
