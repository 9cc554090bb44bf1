"""The MCP tool source against a real MCP server over streamable HTTP and SSE."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vocalis.tools.function import ToolError
from vocalis_mcp import MCPServerHTTP

SERVER = textwrap.dedent(
    """
    import sys
    import uvicorn
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from starlette.applications import Starlette
    from starlette.routing import Mount

    server = MCPServer("http-test")

    @server.tool()
    def greet(name: str) -> str:
        \"\"\"Greet someone.\"\"\"
        return f"hello {name}"

    @server.tool()
    def fail() -> str:
        \"\"\"Always fails.\"\"\"
        raise ToolError("nope")

    app = server.streamable_http_app() if sys.argv[2] == "http" else server.sse_app()
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(tmp_path: Path, mode: str) -> Iterator[int]:
    script = tmp_path / f"server_{mode}.py"
    script.write_text(SERVER)
    port = free_port()
    process = subprocess.Popen([sys.executable, str(script), str(port), mode])
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, "the HTTP MCP server exited"
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def http_port(tmp_path: Path) -> Iterator[int]:
    yield from serve(tmp_path, "http")


@pytest.fixture
def sse_port(tmp_path: Path) -> Iterator[int]:
    yield from serve(tmp_path, "sse")


async def check_source(source: MCPServerHTTP) -> None:
    await source.start()
    try:
        tools = {t.name: t for t in await source.list_tools()}
        assert set(tools) == {"greet", "fail"}
        assert set(tools["greet"].parameters["properties"]) == {"name"}
        assert await tools["greet"].invoke('{"name": "Ada"}') == "hello Ada"
        with pytest.raises(ToolError, match="nope"):
            await tools["fail"].invoke(None)
    finally:
        await source.aclose()
        await source.aclose()


async def test_streamable_http(http_port: int) -> None:
    source = MCPServerHTTP(f"http://127.0.0.1:{http_port}/mcp", {"X-Test": "1"}, denied_tools=[])
    assert source.streamable
    await check_source(source)


async def test_sse(sse_port: int) -> None:
    source = MCPServerHTTP(f"http://127.0.0.1:{sse_port}/sse")
    assert not source.streamable
    await check_source(source)


async def test_unreachable_server_fails_the_call_not_the_process() -> None:
    source = MCPServerHTTP(f"http://127.0.0.1:{free_port()}/mcp", connection_timeout=1.0)
    with pytest.raises(Exception, match="could not start MCP server"):
        await source.start()
    with pytest.raises(ToolError, match="could not start"):
        await source.call_tool("greet", {"name": "x"})
    await source.aclose()
