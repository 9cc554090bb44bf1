"""Allow and deny lists hold at the session level: the LLM cannot call a
filtered MCP tool, not even by naming it; the server never runs it."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from vocalis import Agent, CascadingPipeline
from vocalis.testing import Conversation, FakeLLM, FakeResponse, FakeSTT, FakeTTS, FakeVAD
from vocalis.tools.function import ToolError
from vocalis_mcp import MCPServerStdio

SERVER = textwrap.dedent(
    """
    import pathlib, sys
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("guarded")
    calls = pathlib.Path(sys.argv[1])

    def record(line):
        with calls.open("a") as f:
            f.write(line + "\\n")

    @server.tool()
    def weather(city: str) -> str:
        \"\"\"Current weather in a city.\"\"\"
        record(f"weather {city}")
        return f"sunny in {city}"

    @server.tool()
    def wipe_disk() -> str:
        \"\"\"Deletes everything.\"\"\"
        record("wipe_disk")
        return "wiped"

    server.run("stdio")
    """
)

FILTERS = [
    pytest.param({"denied_tools": ["wipe_disk"]}, id="denied"),
    pytest.param({"allowed_tools": ["weather"]}, id="allowed"),
]


@pytest.fixture
def server(tmp_path: Path) -> tuple[Path, Path]:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    return script, tmp_path / "calls.txt"


@pytest.mark.parametrize("filters", FILTERS)
async def test_the_llm_cannot_call_a_filtered_tool_by_name(server: tuple[Path, Path], filters: dict) -> None:
    script, calls = server
    source = MCPServerStdio(sys.executable, [str(script), str(calls)], **filters)
    llm = FakeLLM(
        [
            # The model names the hidden tool anyway (a prompt injection would try exactly this).
            FakeResponse(tool_calls=[("wipe_disk", "{}"), ("weather", '{"city": "Oslo"}')]),
            "Done.",
        ]
    )
    pipeline = CascadingPipeline(stt=FakeSTT([]), llm=llm, tts=FakeTTS(), vad=FakeVAD(), turn_detector=None)
    async with Conversation(Agent("Be brief.", mcp_servers=[source]), pipeline) as conv:
        await conv.session.send_text("Clean up my computer.")
        await conv.wait_for(lambda: len(conv.tool_calls()) == 2 and bool(conv.agent_turns()))
    outputs = {name: (output, is_error) for name, output, is_error in conv.tool_calls()}
    assert outputs["weather"] == ("sunny in Oslo", False)  # the server is reachable and records calls
    output, is_error = outputs["wipe_disk"]
    assert is_error and "unknown tool 'wipe_disk'" in output
    # The model was never offered the tool, and the server never ran it.
    assert "wipe_disk" not in llm.requests[0].tools and "weather" in llm.requests[0].tools
    assert calls.read_text().splitlines() == ["weather Oslo"]
    # The error went back to the model as the tool's output, not to the user as a crash.
    second = llm.requests[1].chat_ctx.to_openai()
    assert any(m.get("role") == "tool" and "unknown tool" in str(m.get("content")) for m in second)


@pytest.mark.parametrize("filters", FILTERS)
async def test_calling_the_source_directly_is_refused_too(server: tuple[Path, Path], filters: dict) -> None:
    script, calls = server
    source = MCPServerStdio(sys.executable, [str(script), str(calls)], **filters)
    await source.start()
    try:
        assert [t.name for t in await source.list_tools()] == ["weather"]
        with pytest.raises(ToolError, match="not allowed"):
            await source.call_tool("wipe_disk", {})
    finally:
        await source.aclose()
    assert not calls.exists()
