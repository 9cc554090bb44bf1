"""A gateway that echoes the API key in its 401 reply leaks it nowhere.

The refusal's text goes into the ProviderError, the log and the session's
``error`` event (which ``vocalis serve`` forwards to the remote client), so
the provider takes its credentials out of it. The gateway (shared with the
openai plugin's tests) checks that the key was sent, so these tests cannot
pass by not sending it. The key and the gateway header have no well-known
shape: only the provider's own knowledge of its secrets can find them.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "openai"))  # the key-echoing gateway

from key_echo_server import STYLES, KeyEchoGateway

from vocalis import Agent, CascadingPipeline
from vocalis.chat import ChatContext, ChatRole
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.testing import Conversation, FakeSTT, FakeTTS, FakeVAD, OutputCapture
from vocalis_anthropic import AnthropicLLM

KEY = "test-a83b0e91c4d2f7e6"
AUTH_TOKEN = "tok-7c1e9a4f2b8d0e35"
GATEWAY_KEY = "gw-5e2f7a0b19c3d4e8"
SECRETS = [KEY, AUTH_TOKEN, GATEWAY_KEY, quote(KEY, safe=""), quote(AUTH_TOKEN, safe="")]


@pytest.fixture(params=STYLES)
async def gateway(request: pytest.FixtureRequest, server: Any) -> AsyncIterator[KeyEchoGateway]:
    # ``server`` (the conftest's fixture) clears the SDK's environment variables.
    async with KeyEchoGateway(request.param) as gw:
        yield gw
    assert gw.seen, "no request reached the gateway"
    for seen in gw.seen:
        sent = seen.headers.get("x-api-key") or seen.headers["authorization"].removeprefix("Bearer ")
        assert sent in (KEY, AUTH_TOKEN) and seen.headers["x-gateway-key"] == GATEWAY_KEY


def make_llm(gateway: KeyEchoGateway, **overrides: Any) -> AnthropicLLM:
    options: dict[str, Any] = {
        "api_key": KEY,
        "base_url": gateway.url,
        "headers": {"X-Gateway-Key": GATEWAY_KEY},
        "max_retries": 0,
        "_env_file": None,
    }
    return AnthropicLLM(**{**options, **overrides})


async def chat(llm: AnthropicLLM) -> None:
    ctx = ChatContext()
    ctx.add_message(ChatRole.USER, "Hello?")
    async for _ in llm.chat(ctx):
        pass


async def test_the_provider_error_quotes_no_credential(gateway: KeyEchoGateway) -> None:
    llm = make_llm(gateway)
    with OutputCapture() as capture:
        with pytest.raises(ProviderError) as info:
            await chat(llm)
        await llm.aclose()
        error = info.value
        capture.add("error", f"{error!s} {error!r} {error.args!r}")
    assert error.kind is ErrorKind.AUTH and not error.recoverable
    assert "HTTP 401" in str(error)
    if gateway.style == "json":  # only an API error object's message is quoted
        assert "[redacted]" in str(error), str(error)
    assert len(str(error)) < 600  # the HTML page is not copied whole
    capture.assert_absent(SECRETS)


@pytest.mark.parametrize("variable", ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"])
async def test_credentials_from_the_environment_are_taken_out_too(
    gateway: KeyEchoGateway, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    secret = KEY if variable == "ANTHROPIC_API_KEY" else AUTH_TOKEN
    monkeypatch.setenv(variable, secret)
    llm = make_llm(gateway, api_key=None)
    with pytest.raises(ProviderError) as info:
        await chat(llm)
    await llm.aclose()
    assert secret not in str(info.value)
    assert "[redacted]" in str(info.value) or gateway.style != "json"


async def test_the_session_error_event_and_every_log_line_carry_no_key(gateway: KeyEchoGateway) -> None:
    llm = make_llm(gateway)
    pipeline = CascadingPipeline(stt=FakeSTT([]), llm=llm, tts=FakeTTS(), vad=FakeVAD(), turn_detector=None)
    with OutputCapture() as capture:
        conv = Conversation(Agent("Be brief."), pipeline, record_text=True)
        capture.watch(conv.session)
        async with conv:
            await conv.session.send_text("Hello?")
            await conv.wait_for(lambda: bool(conv.errors()))
        await llm.aclose()
    [error] = conv.errors()
    assert error["source"] == "llm:anthropic"
    assert error["message"].startswith("HTTP 401")
    assert "[redacted]" in error["message"] or gateway.style != "json"
    assert "llm:anthropic failed: HTTP 401" in capture.outputs()["loguru"]
    capture.assert_absent(SECRETS)
