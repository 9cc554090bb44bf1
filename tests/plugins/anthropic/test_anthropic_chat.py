"""AnthropicLLM against a local Messages API server: requests, streaming, tools, failures."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from anthropic_messages_server import (
    API_KEY,
    CANNED_TEXT,
    ErrorReply,
    Event,
    MessagesServer,
    SilentReply,
    StreamReply,
    error_event,
    message_events,
    text_reply,
)
from pydantic import SecretStr

from vocalis.chat import ANTHROPIC_CONVERSATION_START, ChatContext, ChatRole
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.llm import ChatChunk, ToolCallRequest, Usage
from vocalis_anthropic import AnthropicLLM
from vocalis_anthropic.errors import NO_CREDENTIALS

MakeLLM = Callable[..., AnthropicLLM]


@dataclass
class Spec:
    """A tool as the LLM contract sees it."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


WEATHER = Spec(
    "get_weather",
    "Current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
TIME = Spec("get_time", "The time now.")


def question(text: str = "What is the weather in Paris?") -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(ChatRole.SYSTEM, "You are a voice assistant.")
    ctx.add_message(ChatRole.USER, text)
    return ctx


async def collect(llm: AnthropicLLM, ctx: ChatContext, **kwargs: Any) -> list[ChatChunk]:
    return await asyncio.wait_for(_all(llm, ctx, **kwargs), 10)


async def _all(llm: AnthropicLLM, ctx: ChatContext, **kwargs: Any) -> list[ChatChunk]:
    return [chunk async for chunk in llm.chat(ctx, **kwargs)]


async def failure(llm: AnthropicLLM, ctx: ChatContext | None = None, **kwargs: Any) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await collect(llm, question() if ctx is None else ctx, **kwargs)
    assert info.value.provider == "llm:anthropic"
    return info.value


def calls_of(chunks: list[ChatChunk]) -> list[ToolCallRequest]:
    return [call for chunk in chunks for call in chunk.tool_calls]


# -- streaming and request shape ----------------------------------------------
async def test_streams_text_and_sends_a_well_formed_request(server: MessagesServer, make_llm: MakeLLM) -> None:
    server.queue(text_reply(["It is ", "sunny", " in Paris."], input_tokens=31, output_tokens=9))
    llm = make_llm(model="claude-test-1", max_tokens=300, temperature=0.4, headers={"x-gateway": "voice"})
    ctx = question()
    ctx.add_message(ChatRole.ASSISTANT, "Let me check.")
    ctx.add_message(ChatRole.USER, "Thanks.")

    chunks = await collect(llm, ctx)
    await llm.aclose()

    assert [c.text for c in chunks[:-1]] == ["It is ", "sunny", " in Paris."]
    assert chunks[-1] == ChatChunk(usage=Usage(prompt_tokens=31, completion_tokens=9))
    (request,) = server.requests
    assert request.path == "/v1/messages"
    assert request.body == {
        "model": "claude-test-1",
        "max_tokens": 300,
        "temperature": 0.4,
        "stream": True,
        "system": "You are a voice assistant.",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "What is the weather in Paris?"}],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "Let me check."}]},
            {"role": "user", "content": [{"type": "text", "text": "Thanks."}]},
        ],
    }
    headers = request.headers
    assert headers["anthropic-version"]
    assert headers["content-type"].startswith("application/json")
    # The 2.x SDK sends the key as a bearer token; older ones used x-api-key.
    assert headers.get("x-api-key") == API_KEY or headers.get("authorization") == f"Bearer {API_KEY}"
    assert headers["x-gateway"] == "voice"


async def test_client_and_connection_are_reused_across_chats(server: MessagesServer, make_llm: MakeLLM) -> None:
    llm = make_llm()
    first = await collect(llm, question("one"))
    second = await collect(llm, question("two"))
    await llm.aclose()
    assert "".join(c.text for c in first) == "".join(c.text for c in second) == "".join(CANNED_TEXT)
    assert len(server.requests) == 2
    assert server.requests[0].client_port == server.requests[1].client_port, "a new connection per chat"


async def test_instructions_only_context_gets_the_start_message(server: MessagesServer, make_llm: MakeLLM) -> None:
    ctx = ChatContext()
    ctx.add_message(ChatRole.SYSTEM, "Greet the caller.")
    llm = make_llm()
    await collect(llm, ctx)
    await llm.aclose()
    body = server.requests[0].body
    assert body["system"] == "Greet the caller."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": ANTHROPIC_CONVERSATION_START}]}]


async def test_empty_context_is_refused_without_a_request(server: MessagesServer, make_llm: MakeLLM) -> None:
    error = await failure(make_llm(), ChatContext())
    assert not error.recoverable and error.kind is ErrorKind.BAD_REQUEST
    assert "empty" in str(error)
    blank = ChatContext()
    blank.add_message(ChatRole.USER, "   ")  # blank text is skipped: still nothing to send
    assert not (await failure(make_llm(), blank)).recoverable
    assert server.requests == []


# -- tools ---------------------------------------------------------------------
async def test_tool_call_split_over_json_deltas(server: MessagesServer, make_llm: MakeLLM) -> None:
    blocks = [
        ("text", ["Let me look."]),
        ("tool_use", "toolu_01", "get_weather", ['{"ci', 'ty": "Pa', 'ris"}']),
    ]
    server.queue(StreamReply(message_events(blocks, stop_reason="tool_use")))
    llm = make_llm()
    chunks = await collect(llm, question(), tools=[WEATHER, TIME])
    await llm.aclose()

    assert chunks[0].text == "Let me look."
    assert calls_of(chunks) == [ToolCallRequest("toolu_01", "get_weather", '{"city": "Paris"}')]
    call_chunk = next(i for i, c in enumerate(chunks) if c.tool_calls)
    assert call_chunk < len(chunks) - 1 and chunks[-1].usage is not None  # usage comes last
    body = server.requests[0].body
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "input_schema": WEATHER.parameters,
        },
        {
            "name": "get_time",
            "description": "The time now.",
            "input_schema": {"type": "object", "properties": {}},
        },
    ]
    assert body["tool_choice"] == {"type": "auto"}


async def test_two_parallel_tool_calls(server: MessagesServer, make_llm: MakeLLM) -> None:
    blocks = [
        ("tool_use", "toolu_a", "get_weather", ['{"city":', ' "Oslo"}']),
        ("tool_use", "toolu_b", "get_time", []),  # no input deltas at all
    ]
    server.queue(StreamReply(message_events(blocks, stop_reason="tool_use")))
    llm = make_llm()
    chunks = await collect(llm, question(), tools=[WEATHER, TIME])
    await llm.aclose()
    assert calls_of(chunks) == [
        ToolCallRequest("toolu_a", "get_weather", '{"city": "Oslo"}'),
        ToolCallRequest("toolu_b", "get_time", "{}"),
    ]
    assert "".join(c.text for c in chunks) == ""


async def test_malformed_tool_json_is_passed_through_raw(server: MessagesServer, make_llm: MakeLLM) -> None:
    server.queue(StreamReply(message_events([("tool_use", "toolu_x", "get_weather", ['{"city": '])])))
    llm = make_llm()
    chunks = await collect(llm, question(), tools=[WEATHER])
    await llm.aclose()
    assert calls_of(chunks) == [ToolCallRequest("toolu_x", "get_weather", '{"city":')]


async def test_tool_history_becomes_tool_use_and_tool_result_blocks(server: MessagesServer, make_llm: MakeLLM) -> None:
    ctx = question()
    ctx.add_message(ChatRole.ASSISTANT, "Checking.")
    ctx.add_function_call("toolu_1", "get_weather", '{"city": "Paris"}')
    ctx.add_function_call("toolu_2", "get_time", "")
    ctx.add_function_output("toolu_1", "get_weather", "sunny, 21 C")
    ctx.add_function_output("toolu_2", "get_time", "no clock", is_error=True)
    llm = make_llm()
    await collect(llm, ctx, tools=[WEATHER, TIME])
    await llm.aclose()
    messages = server.requests[0].body["messages"]
    assert messages[1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": "sunny, 21 C",
                    "is_error": False,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "no clock",
                    "is_error": True,
                },
            ],
        },
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, {"type": "auto"}),
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ("get_time", {"type": "tool", "name": "get_time"}),
    ],
)
async def test_tool_choice(server: MessagesServer, make_llm: MakeLLM, choice: str | None, expected: dict) -> None:
    llm = make_llm()
    await collect(llm, question(), tools=[WEATHER, TIME], tool_choice=choice)
    await llm.aclose()
    assert server.requests[0].body["tool_choice"] == expected


async def test_unknown_tool_choice_is_refused(server: MessagesServer, make_llm: MakeLLM) -> None:
    error = await failure(make_llm(), tools=[WEATHER], tool_choice="sometimes")
    assert not error.recoverable and error.kind is ErrorKind.BAD_REQUEST
    assert "tool_choice" in str(error)
    error = await failure(make_llm(), tool_choice="required")  # no tools to require
    assert not error.recoverable and error.kind is ErrorKind.BAD_REQUEST
    assert server.requests == []


async def test_usage_adds_cached_input_tokens(server: MessagesServer, make_llm: MakeLLM) -> None:
    events = message_events([("text", ["Hi."])], input_tokens=5)
    start = events[0][1]
    assert isinstance(start, dict)
    start["message"]["usage"].update(cache_read_input_tokens=100, cache_creation_input_tokens=20)
    delta = events[-2][1]
    assert isinstance(delta, dict)
    delta["usage"] = {"output_tokens": 42, "input_tokens": 6}  # cumulative counts win
    server.queue(StreamReply(events))
    llm = make_llm()
    chunks = await collect(llm, question())
    await llm.aclose()
    assert chunks[-1].usage == Usage(prompt_tokens=126, completion_tokens=42)


async def test_thinking_and_unknown_blocks_are_not_spoken(server: MessagesServer, make_llm: MakeLLM) -> None:
    events = message_events([("text", ["Answer."])])
    thinking: list[Event] = [
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "Hmm, secret."},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "c2ln"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("brand_new_event", {"type": "brand_new_event", "detail": 1}),
    ]
    text = [(name, {**data, "index": 1} if "index" in data else data) for name, data in events[2:-2]]
    server.queue(StreamReply([*events[:2], *thinking, *text, *events[-2:]]))
    chunks = await collect(make_llm(), question())
    assert "".join(c.text for c in chunks) == "Answer."
    assert calls_of(chunks) == [] and chunks[-1].usage is not None


# -- failures ------------------------------------------------------------------
# Assertions go by kind, recoverability, provider and the words we (or the
# test server) wrote, never by text the SDK or its HTTP library produces.
@pytest.mark.parametrize(
    ("status", "error_type", "recoverable", "kind"),
    [
        (400, "invalid_request_error", False, ErrorKind.BAD_REQUEST),
        (401, "authentication_error", False, ErrorKind.AUTH),
        (403, "permission_error", False, ErrorKind.AUTH),
        (404, "not_found_error", False, ErrorKind.BAD_REQUEST),
        (408, "timeout_error", True, ErrorKind.TIMEOUT),
        (413, "request_too_large", False, ErrorKind.BAD_REQUEST),
        (429, "rate_limit_error", True, ErrorKind.RATE_LIMIT),
        (500, "api_error", True, ErrorKind.SERVER),
        (503, "api_error", True, ErrorKind.SERVER),
        (529, "overloaded_error", True, ErrorKind.RATE_LIMIT),
    ],
)
async def test_http_errors(
    server: MessagesServer,
    make_llm: MakeLLM,
    status: int,
    error_type: str,
    recoverable: bool,
    kind: ErrorKind,
) -> None:
    server.queue(ErrorReply(status, error_type, f"scripted {error_type}"))
    llm = make_llm()
    error = await failure(llm)
    await llm.aclose()
    assert error.kind is kind and error.recoverable is recoverable
    assert str(error).startswith(f"llm:anthropic: HTTP {status} {error_type}: ")
    assert f"scripted {error_type}" in str(error)  # the server's own words
    assert len(server.requests) == 1


async def test_bad_key_is_not_recoverable(server: MessagesServer, make_llm: MakeLLM) -> None:
    llm = make_llm(api_key="sk-ant-wrong", max_retries=2)
    error = await failure(llm)
    await llm.aclose()
    assert error.kind is ErrorKind.AUTH and not error.recoverable
    assert "HTTP 401" in str(error) and "invalid x-api-key" in str(error)
    assert "sk-ant-wrong" not in str(error)
    assert len(server.requests) == 1  # a 401 is not retried


async def test_overloaded_is_retried_then_streams(server: MessagesServer, make_llm: MakeLLM) -> None:
    server.queue(
        ErrorReply(529, "overloaded_error", "Overloaded", headers={"retry-after-ms": "10"}),
        text_reply(["Back again."]),
    )
    llm = make_llm(max_retries=1)
    chunks = await collect(llm, question())
    await llm.aclose()
    assert "".join(c.text for c in chunks) == "Back again."
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    ("error_type", "recoverable", "kind"),
    [
        ("overloaded_error", True, ErrorKind.RATE_LIMIT),
        ("rate_limit_error", True, ErrorKind.RATE_LIMIT),
        ("api_error", True, ErrorKind.SERVER),
        ("invalid_request_error", False, ErrorKind.BAD_REQUEST),
        ("permission_error", False, ErrorKind.AUTH),
        ("some_future_error", True, ErrorKind.UNKNOWN),
    ],
)
async def test_error_event_mid_stream(
    server: MessagesServer, make_llm: MakeLLM, error_type: str, recoverable: bool, kind: ErrorKind
) -> None:
    events = message_events([("text", ["Half an ", "answer"])])
    server.queue(StreamReply([*events[:4], error_event(error_type, "went wrong")]))
    llm = make_llm()
    texts: list[str] = []
    with pytest.raises(ProviderError) as info:
        async for chunk in llm.chat(question()):
            texts.append(chunk.text)
    await llm.aclose()
    error = info.value
    assert texts == ["Half an "]
    assert error.provider == "llm:anthropic"
    assert error.kind is kind and error.recoverable is recoverable
    assert f"error event mid-stream: {error_type}: went wrong" in str(error)


async def test_dropped_connection_mid_stream(server: MessagesServer, make_llm: MakeLLM) -> None:
    events = message_events([("text", ["Cut ", "off"])])
    server.queue(StreamReply(events[:5], then="drop"))
    llm = make_llm()
    error = await failure(llm)
    await llm.aclose()
    assert error.kind is ErrorKind.CONNECTION and error.recoverable
    assert str(error).startswith("llm:anthropic: connection lost mid-stream")


async def test_stream_ending_before_message_stop(server: MessagesServer, make_llm: MakeLLM) -> None:
    server.queue(StreamReply(message_events([("text", ["Trunc"])])[:-2]))
    error = await failure(make_llm())
    assert error.kind is ErrorKind.PROTOCOL and error.recoverable
    assert "the stream ended before message_stop" in str(error)


async def test_malformed_event_data(server: MessagesServer, make_llm: MakeLLM) -> None:
    events = message_events([("text", ["Fine so far"])])
    server.queue(StreamReply([*events[:4], ("content_block_delta", "{not json")]))
    error = await failure(make_llm())
    assert error.kind is ErrorKind.PROTOCOL and error.recoverable
    assert str(error).startswith("llm:anthropic: malformed stream event")


async def test_stalled_stream_times_out(server: MessagesServer, make_llm: MakeLLM) -> None:
    server.queue(StreamReply(message_events([("text", ["Wait"])])[:4], then="stall"))
    started = time.perf_counter()
    error = await failure(make_llm(timeout=0.3))
    assert error.kind is ErrorKind.STALLED and error.recoverable
    assert "the stream stalled: nothing arrived for 0.3 s" in str(error)
    assert time.perf_counter() - started < 5
    assert await asyncio.to_thread(server.disconnected.wait, 5), "the stalled connection was left open"


async def test_silent_server_times_out_before_the_reply(server: MessagesServer, make_llm: MakeLLM) -> None:
    server.queue(SilentReply())
    started = time.perf_counter()
    error = await failure(make_llm(timeout=0.3))
    assert error.kind is ErrorKind.TIMEOUT and error.recoverable
    assert "request timed out: no answer within 0.3 s" in str(error)
    assert time.perf_counter() - started < 5
    assert await asyncio.to_thread(server.disconnected.wait, 5), "the request was left open"


async def test_connection_refused_is_recoverable(server: MessagesServer) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = AnthropicLLM(api_key=API_KEY, base_url=f"http://127.0.0.1:{port}", max_retries=0, _env_file=None)
    error = await failure(llm)
    await llm.aclose()
    assert error.kind is ErrorKind.CONNECTION and error.recoverable
    assert str(error).startswith("llm:anthropic: connection failed")


@pytest.mark.parametrize("where", ["nowhere", "empty_config_dir"])
async def test_missing_credentials_are_not_recoverable(
    server: MessagesServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    # No key, no token, no SDK profile. With nothing configured the provider
    # sees it on the client's attributes; with a config dir named but empty
    # the SDK raises its CredentialsError. Both read the same.
    if where == "nowhere":
        monkeypatch.setenv("HOME", str(tmp_path))
    else:
        monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path))
    llm = AnthropicLLM(base_url=server.url, max_retries=0, _env_file=None)
    error = await failure(llm)
    await llm.aclose()
    assert error.kind is ErrorKind.AUTH and not error.recoverable
    assert str(error).startswith(f"llm:anthropic: {NO_CREDENTIALS}")
    assert server.requests == []


@pytest.mark.parametrize("source", ["auth_token", "header"])
async def test_other_credentials_are_accepted(
    server: MessagesServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source: str
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no SDK profile
    if source == "auth_token":  # sent as a bearer token, which the server takes too
        monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", API_KEY)
        llm = AnthropicLLM(base_url=server.url, max_retries=0, _env_file=None)
    else:
        llm = AnthropicLLM(base_url=server.url, max_retries=0, headers={"X-Api-Key": API_KEY}, _env_file=None)
    chunks = await collect(llm, question())
    await llm.aclose()
    assert "".join(c.text for c in chunks) == "".join(CANNED_TEXT)


# -- stopping ------------------------------------------------------------------
def held_reply() -> StreamReply:
    """One text delta, then pings until the client leaves."""
    return StreamReply(message_events([("text", ["One, ", "two"])])[:4], then="hold")


def closed_already(server: MessagesServer) -> bool:
    """Whether the server sees the client gone, waiting with the loop blocked.

    Blocking is the point: the connection must be closed by the time the
    stop returns, not a few loop iterations later when the garbage collector
    finalises the SDK's stream.
    """
    return server.disconnected.wait(3)


async def test_aclose_midway_stops_the_server_stream(server: MessagesServer, make_llm: MakeLLM) -> None:
    server.queue(held_reply())
    llm = make_llm()
    stream = llm.chat(question("Count to fifty."))
    first = await asyncio.wait_for(anext(stream), 5)
    assert first.text == "One, "
    started = time.perf_counter()
    await stream.aclose()
    assert time.perf_counter() - started < 2
    assert closed_already(server), "the connection outlived aclose()"
    # The provider stays usable after a stopped chat.
    assert "".join(c.text for c in await collect(llm, question())) == "".join(CANNED_TEXT)
    await llm.aclose()


async def test_cancelling_the_consumer_stops_the_server_stream(server: MessagesServer, make_llm: MakeLLM) -> None:
    server.queue(held_reply())
    llm = make_llm()
    got_first = asyncio.Event()

    async def consume() -> None:
        async for _ in llm.chat(question("Count to fifty.")):
            got_first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert closed_already(server), "the connection outlived the cancellation"
    await llm.aclose()


async def test_provider_aclose_ends_chats_in_flight(server: MessagesServer, make_llm: MakeLLM) -> None:
    server.queue(held_reply())
    llm = make_llm()
    got_first = asyncio.Event()
    texts: list[str] = []

    async def consume() -> None:
        async for chunk in llm.chat(question("Count to fifty.")):
            texts.append(chunk.text)
            got_first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_first.wait(), 5)
    await llm.aclose()
    assert closed_already(server), "the connection outlived the provider's aclose()"
    await asyncio.wait_for(task, 2)  # ends quietly, without a final chunk
    assert texts == ["One, "]
    await llm.aclose()  # idempotent


# -- settings and registration ------------------------------------------------
def test_settings_from_env_and_sdk_fallbacks(server: MessagesServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_LLM_ANTHROPIC_MODEL", "claude-env-model")
    monkeypatch.setenv("VOCALIS_LLM_ANTHROPIC_MAX_TOKENS", "77")
    monkeypatch.setenv("VOCALIS_LLM_ANTHROPIC_HEADERS", '{"x-team": "support"}')
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    llm = AnthropicLLM()
    assert llm.model_name == "claude-env-model" and llm.settings.max_tokens == 77
    assert llm.settings.api_key is None and llm.settings.base_url is None

    async def go() -> list[ChatChunk]:
        try:
            return await collect(llm, question())
        finally:
            await llm.aclose()

    assert "".join(c.text for c in asyncio.run(go())) == "".join(CANNED_TEXT)
    request = server.requests[0]
    assert request.body["model"] == "claude-env-model" and request.body["max_tokens"] == 77
    assert request.headers["x-team"] == "support"


def test_defaults_and_secret_masking() -> None:
    llm = AnthropicLLM(api_key="sk-ant-very-secret", _env_file=None)
    s = llm.settings
    assert (s.max_tokens, s.temperature, s.max_retries, s.base_url) == (1024, None, 1, None)
    assert s.model.startswith("claude-")
    assert isinstance(s.api_key, SecretStr)
    assert "sk-ant-very-secret" not in repr(llm) and "sk-ant-very-secret" not in str(s.model_dump())
    with pytest.raises(ValueError):
        AnthropicLLM(temperature=1.5, _env_file=None)


def test_plugin_registers_the_provider() -> None:
    from importlib.metadata import entry_points

    from vocalis_anthropic import plugin

    registered: list[tuple[type, dict[str, Any]]] = []
    plugin.vocalis_register_llm(lambda cls, **kw: registered.append((cls, kw)))  # type: ignore[arg-type]
    assert registered == [(AnthropicLLM, {})]
    assert AnthropicLLM.name == "anthropic"
    (ep,) = [ep for ep in entry_points(group="vocalis") if ep.name == "anthropic"]
    assert ep.value == "vocalis_anthropic.plugin"
