"""Malformed MCP traffic: a hand-written stdio server that misbehaves on purpose.

The server speaks raw JSON-RPC 2.0 lines (no SDK) so it can send what a real
server never should: garbage lines, invalid UTF-8, messages of the wrong
shape, answers with the wrong id, 5 MB lines, JSON-RPC errors, results that
are not a ``CallToolResult``, or exit mid-call. It logs every message it
receives, and the tests check those: calls whose arguments violate the
tool's ``inputSchema`` never reach it, valid ones arrive unchanged.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vocalis import Agent, CascadingPipeline
from vocalis.testing import Conversation, FakeLLM, FakeResponse, FakeSTT, FakeTTS, FakeVAD
from vocalis.tools.function import ToolArgumentsError, ToolError
from vocalis_mcp import MCPServerStdio

SERVER = textwrap.dedent(
    """
    import json, sys

    log = open(sys.argv[1], "a")
    mode = sys.argv[2]
    out = sys.stdout.buffer

    def send(obj):
        out.write(json.dumps(obj).encode() + b"\\n"); out.flush()

    def raw(data):
        out.write(data); out.flush()

    ECHO = {"type": "object", "properties": {
        "text": {"type": "string", "maxLength": 50},
        "times": {"type": "integer", "minimum": 1, "maximum": 3},
        "tags": {"type": "array", "items": {"type": "string"}}},
        "required": ["text"], "additionalProperties": False}
    TOOLS = [{"name": "echo", "description": "Echo the arguments.", "inputSchema": ECHO}] + [
        {"name": name, "description": name, "inputSchema": {"type": "object"}}
        for name in ["garbage_then_ok", "wrong_id", "rpc_error", "bad_result", "binary", "huge_line", "die"]
    ] + [{"name": "loose", "description": "Its schema is itself invalid.",
          "inputSchema": {"type": "object", "properties": {"n": {"type": "banana"}}}}]

    def result(text):
        return {"content": [{"type": "text", "text": text}], "isError": False}

    for line in sys.stdin:
        msg = json.loads(line)
        log.write(json.dumps(msg) + "\\n"); log.flush()
        method, mid = msg.get("method"), msg.get("id")
        if method == "initialize":
            if mode == "noisy_start":
                raw(b"starting up...\\n{broken\\n\\xff\\xfe\\n")
                send({"jsonrpc": "2.0", "id": 12345, "result": {}})
            send({"jsonrpc": "2.0", "id": mid, "result": {
                "protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                "serverInfo": {"name": "fake", "version": "1"}}})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": mid, "result": {"tools": TOOLS}})
        elif method == "tools/call":
            name, args = msg["params"]["name"], msg["params"].get("arguments") or {}
            if name in ("echo", "loose"):
                send({"jsonrpc": "2.0", "id": mid, "result": result(json.dumps(args, sort_keys=True))})
            elif name == "garbage_then_ok":
                raw(b"not json at all\\n")
                send({"jsonrpc": "2.0"})
                send({"jsonrpc": "2.0", "id": "nope", "result": result("stale")})
                send({"jsonrpc": "1.0", "id": mid, "result": result("wrong version")})
                send([1, 2, 3])
                send({"jsonrpc": "2.0", "method": "notifications/unknown", "params": {"x": 1}})
                send({"jsonrpc": "2.0", "id": mid, "result": result("ok after noise")})
            elif name == "wrong_id":
                send({"jsonrpc": "2.0", "id": 987654, "result": result("for nobody")})
            elif name == "rpc_error":
                send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32602, "message": "Invalid params: too big"}})
            elif name == "bad_result":
                send({"jsonrpc": "2.0", "id": mid, "result": {"content": "not a list"}})
            elif name == "binary":
                raw(b"\\xff\\xfe\\xfd garbage\\n")
                send({"jsonrpc": "2.0", "id": mid, "result": result("ok after binary")})
            elif name == "huge_line":
                raw(b"x" * 5_000_000 + b"\\n")
                send({"jsonrpc": "2.0", "id": mid, "result": result("ok after huge line")})
            elif name == "die":
                sys.exit(3)
        elif mid is not None:
            send({"jsonrpc": "2.0", "id": mid, "result": {}})
    """
)

ECHO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "maxLength": 50},
        "times": {"type": "integer", "minimum": 1, "maximum": 3},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["text"],
    "additionalProperties": False,
}


class FakeServer:
    """The misbehaving server's script and the log of what it received."""

    def __init__(self, tmp_path: Path) -> None:
        self.script = tmp_path / "fake_mcp_server.py"
        self.script.write_text(SERVER)
        self.log = tmp_path / "received.jsonl"

    def source(self, mode: str = "", **kwargs: Any) -> MCPServerStdio:
        return MCPServerStdio(sys.executable, [str(self.script), str(self.log), mode], **kwargs)

    def received(self, method: str | None = None) -> list[dict[str, Any]]:
        messages = [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []
        return [m for m in messages if method is None or m.get("method") == method]

    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [(m["params"]["name"], m["params"].get("arguments") or {}) for m in self.received("tools/call")]

    def check_shapes(self) -> None:
        """Every request is well-formed JSON-RPC 2.0 with an id unique on its connection."""
        assert all(m["jsonrpc"] == "2.0" and isinstance(m["method"], str) for m in self.received())
        connections: list[list[Any]] = []
        for message in self.received():
            if message["method"] == "initialize":
                connections.append([])  # a restart: a new process, ids start again
            if "id" in message:
                connections[-1].append(json.dumps(message["id"]))
        assert all(len(ids) == len(set(ids)) for ids in connections)
        for init in self.received("initialize"):
            assert {"protocolVersion", "capabilities", "clientInfo"} <= set(init["params"])
        for call in self.received("tools/call"):
            assert isinstance(call["params"]["name"], str)
            assert isinstance(call["params"].get("arguments", {}), dict)


@pytest.fixture
def server(tmp_path: Path) -> FakeServer:
    return FakeServer(tmp_path)


async def tools_of(source: MCPServerStdio) -> dict[str, Any]:
    return {tool.name: tool for tool in await source.list_tools()}


async def test_garbage_invalid_utf8_and_huge_lines_are_skipped(server: FakeServer) -> None:
    # Generous: reading past a 5 MB line costs the client real CPU time, and a
    # busy machine stretches it; a line that was not skipped fails anyway.
    source = server.source(session_timeout=30.0)
    try:
        tools = await tools_of(source)
        assert await tools["garbage_then_ok"].invoke("{}") == "ok after noise"
        assert await tools["binary"].invoke("{}") == "ok after binary"
        assert await tools["huge_line"].invoke("{}") == "ok after huge line"
        assert await tools["echo"].invoke('{"text": "still fine"}') == '{"text": "still fine"}'
        assert source.restarts == 0
    finally:
        await source.aclose()
    server.check_shapes()


async def test_noise_before_the_initialize_answer(server: FakeServer) -> None:
    source = server.source("noisy_start")
    try:
        tools = await tools_of(source)
        assert await tools["echo"].invoke({"text": "hi"}) == '{"text": "hi"}'
    finally:
        await source.aclose()
    server.check_shapes()


async def test_json_rpc_errors_and_malformed_results_are_tool_errors(server: FakeServer) -> None:
    source = server.source(session_timeout=0.5)
    try:
        tools = await tools_of(source)
        with pytest.raises(ToolError, match=r"refused 'rpc_error': Invalid params: too big \(code -32602\)"):
            await tools["rpc_error"].invoke("{}")
        with pytest.raises(ToolError, match="malformed result for 'bad_result'"):
            await tools["bad_result"].invoke("{}")
        with pytest.raises(ToolError, match="timed out after 0.5 s"):
            await tools["wrong_id"].invoke("{}")
        assert await tools["echo"].invoke({"text": "after all that"}) == '{"text": "after all that"}'
        assert source.restarts == 0, "a bad answer is not a dead connection"
    finally:
        await source.aclose()
    server.check_shapes()


async def test_a_server_that_dies_mid_call_is_restarted(server: FakeServer) -> None:
    source = server.source()
    try:
        tools = await tools_of(source)
        with pytest.raises(ToolError, match="crashed or disconnected during 'die'"):
            await tools["die"].invoke("{}")
        assert await tools["echo"].invoke({"text": "back"}) == '{"text": "back"}'
        assert source.restarts == 1
    finally:
        await source.aclose()
    assert len(server.received("initialize")) == 2


async def test_a_tool_with_an_invalid_schema_leaves_checking_to_the_server(server: FakeServer) -> None:
    source = server.source()
    try:
        tools = await tools_of(source)
        assert await tools["loose"].invoke({"n": [1]}) == '{"n": [1]}'
    finally:
        await source.aclose()


# -- arguments against the input schema -----------------------------------------------

values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False), st.text(max_size=60)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6,
)
argument_objects = st.one_of(
    st.fixed_dictionaries(
        {"text": st.text(max_size=60)},
        optional={"times": st.integers(-1, 5), "tags": st.lists(st.text(max_size=4), max_size=3)},
    ),
    st.dictionaries(st.sampled_from(["text", "times", "tags", "other"]), values, max_size=4),
)
argument_texts = st.one_of(
    argument_objects.map(json.dumps),
    st.sampled_from(
        [
            "",
            "null",
            "[]",
            '"text"',
            "{",
            '{"text": NaN}',
            '{"text": "a", "text": "b"}',
            '{"text": "' + "x" * 100_000 + '"}',
            "[" * 5_000,
            '{"text": 1e999}',
        ]
    ),
)

FUZZ = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


def _strict(text: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({k for k, _ in items}) != len(items):
            raise ValueError("duplicate key")
        return dict(items)

    def constant(name: str) -> Any:
        raise ValueError(name)

    def number(text: str) -> float:
        if abs(float(text)) == float("inf"):
            raise ValueError(text)
        return float(text)

    return json.loads(text or "{}", object_pairs_hook=pairs, parse_constant=constant, parse_float=number)


@FUZZ
@given(batch=st.lists(argument_texts, min_size=25, max_size=25))
def test_arguments_that_violate_the_input_schema_never_reach_the_server(server: FakeServer, batch: list[str]) -> None:
    server.log.unlink(missing_ok=True)

    async def main() -> list[tuple[str, Any]]:
        source = server.source()
        outcomes: list[tuple[str, Any]] = []
        try:
            async with asyncio.timeout(60):  # a hang fails the example instead of stalling the run
                echo = (await tools_of(source))["echo"]
                for text in batch:
                    try:
                        outcomes.append(("ok", await echo.invoke(text)))
                    except ToolArgumentsError as exc:
                        outcomes.append(("invalid", str(exc)))
        finally:
            await source.aclose()
        return outcomes

    outcomes = asyncio.run(main())
    sent = []
    for text, (kind, value) in zip(batch, outcomes):  # noqa: B905
        try:
            parsed = _strict(text)
            parsed = {} if parsed is None else parsed
            jsonschema.validate(parsed, ECHO_SCHEMA)
            valid = True
        except (ValueError, RecursionError, jsonschema.ValidationError):
            valid = False
        if valid:
            assert kind == "ok" and json.loads(value) == parsed, (text[:100], value)
            sent.append(("echo", parsed))
        else:
            assert kind == "invalid", (text[:100], value)
            assert value.startswith("Invalid arguments for tool 'echo': ") and len(value) < 400, value
    assert server.calls() == sent, "only valid arguments reach the server, unchanged"
    server.check_shapes()


# -- inside a session ------------------------------------------------------------------

EXTRA_REFUSED = (
    "invalid arguments: Invalid arguments for tool 'echo': arguments: Additional properties are not "
    "allowed ('extra' was unexpected)"
)


async def test_a_session_survives_a_misbehaving_server(server: FakeServer) -> None:
    source = server.source(session_timeout=0.5)
    calls = [
        ("echo", '{"text": 5}'),
        ("echo", '{"text": "ok", "extra": true}'),
        ("garbage_then_ok", "{}"),
        ("rpc_error", "{}"),
        ("bad_result", "{}"),
        ("wrong_id", "{}"),
        ("die", "{}"),
    ]
    llm = FakeLLM(
        [
            FakeResponse("One moment.", tool_calls=calls),
            "Some of that worked.",
            FakeResponse(tool_calls=[("echo", '{"text": "again"}')]),
            "Echoed again.",
        ]
    )
    pipeline = CascadingPipeline(
        stt=FakeSTT([]), llm=llm, tts=FakeTTS(seconds_per_char=0.001), vad=FakeVAD(), turn_detector=None
    )  # None: no plugin discovery inside the loop
    async with Conversation(Agent("Use the tools.", mcp_servers=[source]), pipeline) as conv:
        await conv.session.send_text("try everything")
        await conv.session.send_text("and once more")
    outputs = [(o["name"], o["output"], o["is_error"]) for o in conv.named("function_call")]
    assert len(outputs) == len(calls) + 1, outputs
    by_name: dict[str, list[tuple[str, bool]]] = {}
    for name, output, is_error in outputs:
        by_name.setdefault(name, []).append((output, is_error))
    assert sorted(by_name["echo"]) == sorted(
        [
            ("invalid arguments: Invalid arguments for tool 'echo': text: 5 is not of type 'string'", True),
            (EXTRA_REFUSED, True),
            ('{"text": "again"}', False),
        ]
    )
    assert by_name["garbage_then_ok"] == [("ok after noise", False)]
    assert "refused 'rpc_error'" in by_name["rpc_error"][0][0]
    assert "malformed result" in by_name["bad_result"][0][0]
    # wrong_id waits for an answer that never comes, until its timeout or the server's exit.
    assert by_name["wrong_id"][0][1] and "MCP server" in by_name["wrong_id"][0][0]
    assert "crashed or disconnected during 'die'" in by_name["die"][0][0]
    assert all(by_name[name][0][1] for name in ("rpc_error", "bad_result", "die"))
    assert conv.agent_turns()[-1] == "Echoed again."
    assert [args for name, args in server.calls() if name == "echo"] == [{"text": "again"}]
    server.check_shapes()
