"""A server that echoes the API key in its 401 reply leaks it nowhere.

The refusal's text goes into the ProviderError, the log and the session's
``error`` event (which ``vocalis serve`` forwards to the remote client), so
every OpenAI provider takes its credentials out of it. The gateway checks
that the key was sent, so these tests cannot pass by not sending it. The key
and the gateway header have no well-known shape: only the provider's own
knowledge of its secrets can find them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import pytest
from key_echo_server import STYLES, KeyEchoGateway
from realtime_server import RealtimeServer, ServerTurn
from test_openai_realtime import is_done, read_until

from vocalis import Agent, CascadingPipeline
from vocalis.chat import ChatContext, ChatRole
from vocalis.providers.base import ErrorKind, Provider, ProviderError
from vocalis.testing import Conversation, FakeSTT, FakeTTS, FakeVAD, OutputCapture, tone
from vocalis_openai import OpenAILLM, OpenAIRealtime, OpenAISTT, OpenAITTS

KEY = "test-4f1d9b2c8e7a90d1"
GATEWAY_KEY = "gw-5e2f7a0b19c3d4e8"
SECRETS = [KEY, GATEWAY_KEY, quote(KEY, safe=""), quote(GATEWAY_KEY, safe="")]


@pytest.fixture(params=STYLES)
async def gateway(request: pytest.FixtureRequest) -> AsyncIterator[KeyEchoGateway]:
    async with KeyEchoGateway(request.param) as gw:
        yield gw
    # The key did reach the gateway, which quoted it back.
    assert gw.seen, "no request reached the gateway"
    for seen in gw.seen:
        assert seen.headers["authorization"] == f"Bearer {KEY}" and seen.headers["x-gateway-key"] == GATEWAY_KEY


def options(gateway: KeyEchoGateway) -> dict[str, Any]:
    return {
        "api_key": KEY,
        "base_url": f"{gateway.url}/v1",
        "headers": {"X-Gateway-Key": GATEWAY_KEY},
        "max_retries": 0,
        "_env_file": None,
    }


async def _chat(gateway: KeyEchoGateway) -> Provider:
    llm = OpenAILLM(model="test-model", **options(gateway))
    ctx = ChatContext()
    ctx.add_message(ChatRole.USER, "hello")
    try:
        async for _ in llm.chat(ctx):
            pass
    finally:
        await llm.aclose()
    return llm


async def _prewarm(gateway: KeyEchoGateway) -> Provider:
    llm = OpenAILLM(model="test-model", **options(gateway))
    try:
        await llm.prewarm()  # lists the models to check the key
    finally:
        await llm.aclose()
    return llm


async def _transcribe(gateway: KeyEchoGateway) -> Provider:
    stt = OpenAISTT(**options(gateway))
    try:
        await stt.recognize([tone(0.5)])  # speech: silence is not sent at all
    finally:
        await stt.aclose()
    return stt


async def _speak(gateway: KeyEchoGateway) -> Provider:
    tts = OpenAITTS(**options(gateway))
    try:
        async for _ in tts.synthesize("Hello there."):
            pass
    finally:
        await tts.aclose()
    return tts


async def _connect(gateway: KeyEchoGateway) -> Provider:
    model = OpenAIRealtime(**options(gateway))
    try:
        await model.connect(instructions="x")  # the WebSocket upgrade is refused
    finally:
        await model.aclose()
    return model


CALLS: dict[str, Callable[[KeyEchoGateway], Awaitable[Provider]]] = {
    "chat": _chat,
    "prewarm": _prewarm,
    "transcribe": _transcribe,
    "speak": _speak,
    "realtime": _connect,
}


@pytest.mark.parametrize("call", sorted(CALLS))
async def test_the_provider_error_quotes_no_credential(gateway: KeyEchoGateway, call: str) -> None:
    with OutputCapture() as capture:
        with pytest.raises(ProviderError) as info:
            await CALLS[call](gateway)
        error = info.value
        capture.add("error", f"{error!s} {error!r} {error.args!r}")
    assert error.kind is ErrorKind.AUTH and not error.recoverable
    assert "401" in str(error) and "[redacted" in str(error), str(error)  # the mark may be cut short
    assert len(str(error)) < 600  # the HTML page is not copied whole
    capture.assert_absent(SECRETS)


@pytest.mark.parametrize("where", ["environment", "settings"])
async def test_a_key_from_the_environment_is_taken_out_too(
    gateway: KeyEchoGateway, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    settings = options(gateway)
    if where == "environment":
        monkeypatch.setenv("OPENAI_API_KEY", settings.pop("api_key"))
    llm = OpenAILLM(model="test-model", **settings)
    with pytest.raises(ProviderError) as info:
        await llm.prewarm()
    await llm.aclose()
    assert KEY not in str(info.value) and "[redacted" in str(info.value)


async def test_the_session_error_event_and_every_log_line_carry_no_key(gateway: KeyEchoGateway) -> None:
    llm = OpenAILLM(model="test-model", **options(gateway))
    pipeline = CascadingPipeline(stt=FakeSTT([]), llm=llm, tts=FakeTTS(), vad=FakeVAD(), turn_detector=None)
    with OutputCapture() as capture:
        conv = Conversation(Agent("Be brief."), pipeline, record_text=True)
        capture.watch(conv.session)
        async with conv:
            await conv.session.send_text("Hello?")
            await conv.wait_for(lambda: bool(conv.errors()))
        await llm.aclose()
    # Both the prewarm (the key check) and the chat were refused.
    errors = conv.errors()
    assert len(errors) == 2 and all(e["source"] == "llm:openai" for e in errors)
    assert all(e["message"].startswith("HTTP 401") and "[redacted" in e["message"] for e in errors)
    outputs = capture.outputs()
    assert "HTTP 401" in outputs["events"] and "llm:openai failed: HTTP 401" in outputs["loguru"]
    capture.assert_absent(SECRETS)


async def test_a_realtime_server_error_quoting_the_key_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    # A server ``error`` event mid-session: it becomes an event, an error and a log line.
    caplog.set_level(logging.INFO, logger="websockets.server")  # the test's server logs what it receives
    async with RealtimeServer([ServerTurn(error=f"key {KEY} has no access")], api_key=KEY) as server:
        model = OpenAIRealtime(api_key=KEY, base_url=server.base_url, _env_file=None)
        with OutputCapture() as capture:
            rt = await model.connect(instructions="x")
            await rt.create_response()
            events = await read_until(rt, is_done)
            capture.add("events", repr(events))
            capture.add("errors", repr([(str(e), e.args) for e in rt.errors]))
            await model.aclose()
    assert server.handshakes[0][1]["authorization"] == f"Bearer {KEY}"
    [error] = rt.errors
    assert "key [redacted] has no access" in str(error)
    assert "key [redacted] has no access" in events[0].text
    capture.assert_absent([KEY])
