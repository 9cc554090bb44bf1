"""The MCP tool source against real MCP servers run over stdio."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from vocalis import Agent, CascadingPipeline
from vocalis.chat import FunctionCallOutput
from vocalis.plugin.registry import ProviderKind
from vocalis.testing import Conversation, FakeLLM, FakeResponse, FakeSTT, FakeTTS, FakeVAD
from vocalis.tools.function import ToolArgumentsError, ToolError
from vocalis_mcp import MCPServerHTTP, MCPServerStdio

SERVER = textwrap.dedent(
    """
    import os, sys, time, pathlib
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("test")
    pathlib.Path(sys.argv[1]).open("a").write(f"{os.getpid()}\\n")

    @server.tool()
    def add(a: int, b: int) -> str:
        \"\"\"Add two integers.\"\"\"
        return f"sum is {a + b}"

    @server.tool()
    def fail(reason: str) -> str:
        \"\"\"Always fails.\"\"\"
        raise ToolError(f"broken: {reason}")

    @server.tool()
    def oops() -> str:
        \"\"\"An unexpected exception.\"\"\"
        raise RuntimeError("secret detail")

    @server.tool()
    def crash() -> str:
        \"\"\"Kills the server.\"\"\"
        os._exit(1)

    @server.tool()
    def hang() -> str:
        \"\"\"Never answers.\"\"\"
        time.sleep(3600)
        return "never"

    @server.tool()
    def info() -> dict:
        \"\"\"Structured output.\"\"\"
        return {"name": "vocalis", "stars": 5}

    server.run("stdio")
    """
)


@pytest.fixture
def server_script(tmp_path: Path) -> tuple[Path, Path]:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    return script, tmp_path / "pids.txt"


def make_source(server_script: tuple[Path, Path], **kwargs: object) -> MCPServerStdio:
    script, pids = server_script
    return MCPServerStdio(sys.executable, [str(script), str(pids)], **kwargs)  # type: ignore[arg-type]


def pids_of(server_script: tuple[Path, Path]) -> list[int]:
    return [int(line) for line in server_script[1].read_text().split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); treat an exited-but-unreaped child as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def runner_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("mcp-runner") and not t.done()]


async def test_lists_tools_with_schemas_and_calls(server_script: tuple[Path, Path]) -> None:
    source = make_source(server_script)
    await source.start()
    try:
        tools = {t.name: t for t in await source.list_tools()}
        assert set(tools) == {"add", "fail", "oops", "crash", "hang", "info"}
        add = tools["add"]
        assert add.description == "Add two integers."
        assert add.parameters["type"] == "object"
        assert set(add.parameters["properties"]) == {"a", "b"}
        assert add.parameters["properties"]["a"]["type"] == "integer"
        assert await add.invoke('{"a": 2, "b": 3}') == "sum is 5"
        assert await add.invoke({"a": 1, "b": 1}) == "sum is 2"
        results = await asyncio.gather(*(add.invoke({"a": i, "b": i}) for i in range(5)))
        assert results == [f"sum is {2 * i}" for i in range(5)]
        assert json.loads(await tools["info"].invoke(None)) == {"name": "vocalis", "stars": 5}
        with pytest.raises(ToolArgumentsError):
            await add.invoke("{not json")
        with pytest.raises(ToolArgumentsError):
            await add.invoke("[1, 2]")
        with pytest.raises(ToolError, match="broken: disk"):
            await tools["fail"].invoke({"reason": "disk"})
        with pytest.raises(ToolError, match="Error executing tool oops"):
            await tools["oops"].invoke({})
        assert await add.invoke({"a": 4, "b": 4}) == "sum is 8"  # a tool error leaves the server up
    finally:
        await source.aclose()


async def test_allow_and_deny_lists(server_script: tuple[Path, Path]) -> None:
    allowed = make_source(server_script, allowed_tools=["add", "fail"], denied_tools=["fail"])
    try:
        assert [t.name for t in await allowed.list_tools()] == ["add"]
        with pytest.raises(ToolError, match="not allowed"):
            await allowed.call_tool("fail", {"reason": "x"})
    finally:
        await allowed.aclose()
    denied = make_source(server_script, denied_tools=["crash", "hang"])
    await denied.start()
    try:
        assert {t.name for t in await denied.list_tools()} == {"add", "fail", "oops", "info"}
    finally:
        await denied.aclose()


async def test_crash_mid_call_then_restart(server_script: tuple[Path, Path]) -> None:
    source = make_source(server_script)
    await source.start()
    try:
        with pytest.raises(ToolError, match="server.py"):
            await source.call_tool("crash", {})
        assert await source.call_tool("add", {"a": 20, "b": 22}) == "sum is 42"
        assert source.restarts == 1
        first, second = pids_of(server_script)
        assert not alive(first) and alive(second)
    finally:
        await source.aclose()
    assert not any(alive(pid) for pid in pids_of(server_script))


async def test_hanging_tool_times_out(server_script: tuple[Path, Path]) -> None:
    source = make_source(server_script, session_timeout=0.5)
    await source.start()
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(ToolError, match="timed out after 0.5 s"):
            await source.call_tool("hang", {})
        assert loop.time() - t0 < 2.0
        assert await source.call_tool("add", {"a": 1, "b": 2}) == "sum is 3"
    finally:
        await source.aclose()


async def test_aclose_leaves_no_process_or_task(server_script: tuple[Path, Path]) -> None:
    source = make_source(server_script, session_timeout=0.3)
    await source.start()
    with pytest.raises(ToolError):
        await source.call_tool("hang", {})  # a busy server must be stopped too
    (pid,) = pids_of(server_script)
    assert alive(pid) and runner_tasks()
    await source.aclose()
    await source.aclose()  # idempotent
    assert not alive(pid)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert runner_tasks() == []
    with pytest.raises(ToolError, match="closed"):
        await source.call_tool("add", {"a": 1, "b": 2})


async def test_bad_executable_fails_start_clearly(tmp_path: Path) -> None:
    source = MCPServerStdio(str(tmp_path / "no-such-server"), [])
    with pytest.raises(Exception, match="could not start MCP server"):
        await source.start()
    await source.aclose()
    assert runner_tasks() == []


async def test_agent_uses_mcp_tool_end_to_end(server_script: tuple[Path, Path]) -> None:
    source = make_source(server_script)
    llm = FakeLLM([FakeResponse(tool_calls=[("add", '{"a": 19, "b": 23}')]), "The sum is 42."])
    pipeline = CascadingPipeline(stt=FakeSTT([]), llm=llm, tts=FakeTTS(), vad=FakeVAD(), turn_detector=None)
    async with Conversation(Agent("You add numbers.", mcp_servers=[source]), pipeline) as conv:
        await conv.session.reply("what is 19 plus 23?")
        outputs = [i for i in conv.session.agent.chat_context.items if isinstance(i, FunctionCallOutput)]
    assert [(o.name, o.output, o.is_error) for o in outputs] == [("add", "sum is 42", False)]
    assert "add" in llm.requests[0].tools
    assert not any(alive(pid) for pid in pids_of(server_script))  # the session closed the source
    assert runner_tasks() == []


def test_settings_registration_and_http_transport_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    from vocalis_mcp import plugin

    registered: list[type] = []
    plugin.vocalis_register_tools(lambda cls, **_: registered.append(cls))  # type: ignore[arg-type]
    assert registered == [MCPServerStdio]
    assert MCPServerStdio.kind is ProviderKind.TOOLS and MCPServerStdio.name == "mcp"
    monkeypatch.setenv("VOCALIS_TOOLS_MCP_SESSION_TIMEOUT", "2.5")
    assert MCPServerStdio("python", []).settings.session_timeout == 2.5
    assert MCPServerStdio("python", [], session_timeout=1.0).settings.session_timeout == 1.0
    assert MCPServerHTTP("http://127.0.0.1:1/mcp").streamable
    assert not MCPServerHTTP("http://127.0.0.1:1/sse").streamable
    http = MCPServerHTTP("http://h/mcp", {"X-Key": "k"}, 3.0, 60.0, 4.0)
    assert (http.settings.connection_timeout, http.settings.stream_read_timeout, http.settings.session_timeout) == (
        3.0,
        60.0,
        4.0,
    )
