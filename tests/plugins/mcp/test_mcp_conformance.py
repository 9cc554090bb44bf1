"""The shared provider checks for both MCP tool sources."""

from __future__ import annotations

import sys

import pytest

from vocalis.testing.conformance import ProviderConformance
from vocalis_mcp import MCPServerHTTP, MCPServerStdio


class TestMCPServerStdioConformance(ProviderConformance):
    @pytest.fixture
    def provider(self) -> MCPServerStdio:
        return MCPServerStdio(sys.executable, ["server.py"])


class TestMCPServerHTTPConformance(ProviderConformance):
    @pytest.fixture
    def provider(self) -> MCPServerHTTP:
        return MCPServerHTTP("http://127.0.0.1:1/mcp")


def test_server_named_by_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_TOOLS_MCP_COMMAND", "python")
    monkeypatch.setenv("VOCALIS_TOOLS_MCP_ARGS", '["srv.py", "--x"]')
    monkeypatch.setenv("VOCALIS_TOOLS_MCP_URL", "http://h:1/sse")
    stdio = MCPServerStdio()
    assert (stdio.executable_path, stdio.process_arguments) == ("python", ["srv.py", "--x"])
    assert MCPServerHTTP().endpoint_url == "http://h:1/sse"


async def test_no_server_named_is_a_clear_error() -> None:
    with pytest.raises(Exception, match="no executable_path"):
        await MCPServerStdio().start()
