"""No secret leaves a session of real providers: OpenAI and Anthropic keys and
gateway headers, an MCP server's Authorization header and URL key, the WebRTC
ICE credential.

Everything a session lets out is captured (loguru at TRACE, stdlib logging at
DEBUG, every event, the metrics JSONL, the OpenTelemetry spans, reprs and
``vocalis plugins --json``) and searched for each secret. The servers check
that the secrets did arrive where they belong, so the test cannot pass by
not sending them. Needs the anthropic, mcp and webrtc plugins too (tox env
``all``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

for _needed in ("vocalis_anthropic", "vocalis_mcp", "vocalis_webrtc"):
    pytest.importorskip(_needed, reason="needs the anthropic, mcp and webrtc plugins (tox env `all`)")

sys.path.insert(0, str(Path(__file__).parents[1] / "anthropic"))  # the local Messages API server

from anthropic_messages_server import ErrorReply, MessagesServer
from chat_server import ChatServer, Reply
from click.testing import CliRunner

from vocalis import Agent, CascadingPipeline
from vocalis.cli.main import cli
from vocalis.providers.base import ProviderError
from vocalis.testing import Conversation, FakeSTT, FakeTTS, FakeVAD, OutputCapture
from vocalis_anthropic import AnthropicLLM
from vocalis_mcp import MCPServerHTTP
from vocalis_mcp.server import MCPSettings
from vocalis_openai import OpenAILLM
from vocalis_webrtc import WebRTCTransport

OPENAI_KEY = "sk-proj-test-4f1d9b2c8e7a"
ANTHROPIC_KEY = "sk-ant-test-a83b0e91c4d2"
GATEWAY_KEY = "gw-key-5e2f7a0b19c3"
MCP_AUTH = "Bearer mcp-token-0c7d3e9f41a8"
MCP_URL_KEY = "mcp-url-key-b6e1f08d2a73"
ICE_CREDENTIAL = "ice-cred-7a2c5e90f1b4"
SECRETS = [OPENAI_KEY, ANTHROPIC_KEY, GATEWAY_KEY, MCP_AUTH, MCP_URL_KEY, ICE_CREDENTIAL]

MCP_SERVER = textwrap.dedent(
    """
    import os, pathlib, sys
    import uvicorn
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("secured")
    log = pathlib.Path(sys.argv[2])

    @server.tool()
    def weather(city: str) -> str:
        \"\"\"Current weather in a city.\"\"\"
        with log.open("a") as f:
            f.write(f"weather {city}\\n")
        return f"sunny in {city}"

    app = server.streamable_http_app()
    expected = os.environ["EXPECTED_AUTHORIZATION"].encode()

    async def guarded(scope, receive, send):
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != expected:
            with log.open("a") as f:
                f.write("refused\\n")
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await app(scope, receive, send)

    uvicorn.run(guarded, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mcp_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A streamable-HTTP MCP server that refuses requests without MCP_AUTH."""
    script, log = tmp_path / "mcp_server.py", tmp_path / "calls.txt"
    script.write_text(MCP_SERVER)
    port = free_port()
    env = {**os.environ, "EXPECTED_AUTHORIZATION": MCP_AUTH}
    process = subprocess.Popen([sys.executable, str(script), str(port), str(log)], env=env)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, "the MCP server exited"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp", log
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
async def chat_server() -> AsyncIterator[ChatServer]:
    async with ChatServer(OPENAI_KEY) as server:
        yield server


@pytest.fixture
def messages_server() -> Iterator[MessagesServer]:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL"):
        os.environ.pop(name, None)
    with MessagesServer(ANTHROPIC_KEY) as server:
        yield server
    assert server.violations == []


def pipeline(llm: Any, heard: list[str]) -> CascadingPipeline:
    return CascadingPipeline(stt=FakeSTT(heard), llm=llm, tts=FakeTTS(), vad=FakeVAD(), turn_detector=None)


async def test_no_secret_reaches_any_output(
    chat_server: ChatServer, messages_server: MessagesServer, mcp_server: tuple[str, Path]
) -> None:
    mcp_url, mcp_calls = mcp_server
    # OpenAI: a tool turn through the MCP server, then a server error.
    chat_server.script += [
        Reply(tool_calls=[("weather", '{"city": "Paris"}')]),
        Reply(text="It is sunny in Paris."),
        Reply(status=500),
    ]
    openai_llm = OpenAILLM(
        api_key=OPENAI_KEY,
        base_url=chat_server.base_url,
        model="test-model",
        headers={"X-Gateway-Key": GATEWAY_KEY},
        max_retries=0,
        _env_file=None,
    )
    tools = MCPServerHTTP(mcp_url, {"Authorization": MCP_AUTH}, session_timeout=10)
    # Anthropic: an answer, then a rate limit.
    messages_server.queue(ErrorReply(429, "rate_limit_error", "slow down"))
    anthropic_llm = AnthropicLLM(
        api_key=ANTHROPIC_KEY,
        base_url=messages_server.url,
        model="claude-test",
        headers={"X-Gateway-Key": GATEWAY_KEY},
        max_retries=0,
        _env_file=None,
    )
    webrtc = WebRTCTransport(
        ice_servers=["turn:turn.invalid:3478"], ice_username="agent", ice_credential=ICE_CREDENTIAL
    )

    with OutputCapture() as capture:
        first = Conversation(
            Agent("Be brief.", mcp_servers=[tools]), pipeline(openai_llm, ["weather please"]), record_text=True
        )
        second = Conversation(Agent("Be brief."), pipeline(anthropic_llm, []), record_text=True)
        for conv in (first, second):
            capture.watch(conv.session)
        async with first, second:
            await first.session.send_text("What is the weather in Paris?")  # returns once spoken
            await first.wait_for(lambda: bool(first.agent_turns()))
            await first.session.send_text("And tomorrow?")
            await first.wait_for(lambda: bool(first.errors()))
            await second.session.send_text("Hello?")
            await second.wait_for(lambda: bool(second.errors()))
            await second.session.send_text("Hello again?")
            await second.wait_for(lambda: bool(second.agent_turns()))
        capture.add_repr(
            first.session,
            second.session,
            first.session.agent,
            first.session.pipeline,
            openai_llm,
            openai_llm.settings,
            anthropic_llm,
            anthropic_llm.settings,
            tools,
            tools.settings,
            webrtc,
            webrtc.settings,
            first.session.agent.chat_context,
            *first.session.metrics,
            *second.session.metrics,
        )
        await webrtc.aclose()
        await openai_llm.aclose()
        await anthropic_llm.aclose()

    # The secrets were used: each server saw its credential.
    assert all(r.headers["Authorization"] == f"Bearer {OPENAI_KEY}" for r in chat_server.requests)
    assert {k.lower(): v for k, v in chat_server.requests[0].headers.items()}["x-gateway-key"] == GATEWAY_KEY
    assert len(messages_server.requests) == 2
    for sent in messages_server.requests:
        key = sent.headers.get("x-api-key") or sent.headers.get("authorization", "").removeprefix("Bearer ")
        assert (key, sent.headers.get("x-gateway-key")) == (ANTHROPIC_KEY, GATEWAY_KEY)
    assert mcp_calls.read_text().splitlines() == ["weather Paris"]  # never refused
    assert first.tool_calls() == [("weather", "sunny in Paris", False)]
    # Every channel really captured the sessions, errors included.
    outputs = capture.outputs()
    for channel in ("loguru", "logging", "events", "metrics", "spans"):
        assert outputs[channel].strip(), channel
    assert "HTTP 500" in outputs["events"] and "429" in outputs["events"]
    assert "http://127.0.0.1" in outputs["loguru"] + outputs["logging"]
    capture.assert_absent(SECRETS)


def test_vocalis_plugins_shows_no_configured_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_LLM_OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("VOCALIS_LLM_OPENAI_HEADERS", json.dumps({"X-Gateway-Key": GATEWAY_KEY}))
    monkeypatch.setenv("VOCALIS_LLM_ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("VOCALIS_TRANSPORT_WEBRTC_ICE_CREDENTIAL", ICE_CREDENTIAL)
    monkeypatch.setenv("VOCALIS_TOOLS_MCP_URL", f"http://127.0.0.1:9/mcp?key={MCP_URL_KEY}")
    with OutputCapture() as capture:
        for args in (["plugins", "--json"], ["-v", "-v", "plugins"]):
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 0, result.output
            capture.add(" ".join(args), result.output)
        # What the settings look like to a provider built from that environment.
        capture.add_repr(OpenAILLM(), AnthropicLLM(), WebRTCTransport().settings, MCPServerHTTP())
    names = {(row["kind"], row["name"]) for row in json.loads(capture.outputs()["plugins --json"])}
    assert {("llm", "openai"), ("llm", "anthropic"), ("transport", "webrtc"), ("tools", "mcp")} <= names
    capture.assert_absent(SECRETS)


async def test_a_key_in_the_mcp_url_stays_out_of_names_errors_and_reprs(mcp_server: tuple[str, Path]) -> None:
    mcp_url, calls = mcp_server
    keyed = MCPServerHTTP(f"{mcp_url}?key={MCP_URL_KEY}", startup_timeout=5)
    assert keyed.server_name == mcp_url
    with OutputCapture() as capture:
        with pytest.raises(ProviderError) as info:  # refused: no Authorization header
            await keyed.start()
        capture.add("error", f"{info.value!s} {info.value!r}")
        await keyed.aclose()
        capture.add_repr(keyed, MCPServerHTTP(settings=MCPSettings(url=f"{mcp_url}?key={MCP_URL_KEY}")))
    assert calls.read_text().splitlines() == ["refused"]  # the request did reach the server
    assert "could not start MCP server" in capture.outputs()["error"] and "401" in capture.outputs()["error"]
    # The HTTP library logs request URLs, query included, at INFO: keys belong in headers.
    assert set(capture.where(MCP_URL_KEY)) <= {"logging"}
