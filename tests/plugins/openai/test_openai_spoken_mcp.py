"""Done-when of the network-providers issue: a spoken question that needs a
tool from a stdio MCP server, answered through an OpenAI-compatible LLM at a
configurable base URL.

``vocalis talk`` runs in a subprocess with the offline STT, VAD and TTS, the
example agent (examples/mcp_agent.py, whose tool comes from
examples/mcp_time_server.py over stdio) and ``VOCALIS_LLM=openai`` pointed at
a local Chat Completions server. The server plays a model that calls the tool
for a question about a city and then answers with the tool's output, so the
test can check every hop: the transcript in the request, the MCP tool's schema
in ``tools``, the tool's real output sent back, and the answer spoken.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import wave
from pathlib import Path
from typing import Any

import pytest
from chat_server import ChatServer, Reply

for needed in ("vocalis_mcp", "vocalis_whisper", "vocalis_piper", "vocalis_silero"):
    pytest.importorskip(needed, reason="needs the offline stack and vocalis-mcp (tox env `all`)")

# The whole offline stack plus an MCP server, each a fresh interpreter: minutes
# on a loaded machine. The limits below only catch hangs.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]

ROOT = Path(__file__).resolve().parents[3]
QUESTION = ROOT / "examples" / "what_time_tokyo.wav"
CITIES = ("tokyo", "paris", "london", "boston")


def model(body: dict[str, Any]) -> Reply:
    """A deterministic 'model': call the tool for a city, then say its result."""
    last = body["messages"][-1]
    if last["role"] == "tool":
        return Reply(text=f"{last['content']} Anything else?")
    text = str(last.get("content") or "").lower()
    city = next((c for c in CITIES if c in text), None)
    if city is None or not any(t["function"]["name"] == "get_local_time" for t in body.get("tools", [])):
        return Reply(text="Sorry, which city?")
    return Reply(tool_calls=[("get_local_time", json.dumps({"city": city.title()}))])


async def test_spoken_question_needs_an_mcp_tool(tmp_path: Path) -> None:
    output = tmp_path / "reply.wav"
    async with ChatServer("local-key", default=Reply(respond=model)) as server:
        env = {
            **os.environ,
            "VOCALIS_LLM": "openai",
            "VOCALIS_LLM_OPENAI_BASE_URL": server.base_url,
            "VOCALIS_LLM_OPENAI_API_KEY": "local-key",
            "VOCALIS_LLM_OPENAI_MODEL": "local-model",
            "VOCALIS_LOG_LEVEL": "WARNING",
            # The time server is a fresh interpreter importing the MCP SDK: far
            # more than the default 20 s to answer on a loaded machine, and
            # without its tools the model has nothing to call.
            "VOCALIS_TOOLS_MCP_STARTUP_TIMEOUT": "180",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "vocalis.cli.main",
            "talk",
            "--agent",
            "examples/mcp_agent.py:make_agent",
            "--input",
            str(QUESTION),
            "--output",
            str(output),
            "--fast",
            "--timeout",
            "240",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), 420)
    out, err = stdout.decode(), stderr.decode()
    assert process.returncode == 0, f"{out}\n{err}"

    # Hop 1: the recognised question reached the LLM, with the MCP tool offered.
    asked = [r.body for r in server.requests if "tokyo" in json.dumps(r.body["messages"]).lower()]
    assert asked, out
    tool = next(t for t in asked[0]["tools"] if t["function"]["name"] == "get_local_time")
    assert tool["function"]["parameters"]["required"] == ["city"]
    assert server.requests[0].headers["Authorization"] == "Bearer local-key"
    assert len(server.model_lists) == 1  # prewarm connected at session start
    assert all(r.body["model"] == "local-model" for r in server.requests)

    # Hop 2: the MCP server ran the tool and its real output went back to the LLM.
    results = [m for r in server.requests for m in r.body["messages"] if m["role"] == "tool"]
    assert results, out
    assert re.fullmatch(r"It is \d{1,2}:\d\d [AP]M on [A-Z][a-z]+day in Tokyo\.", results[0]["content"])
    calls = [m for m in server.requests[-1].body["messages"] if m.get("tool_calls")]
    assert len(calls) == 1 and calls[0]["tool_calls"][0]["id"] == results[0]["tool_call_id"]

    # Hop 3: the answer was spoken (transcript printed, audio written).
    assert re.search(r"It is \d{1,2}:\d\d [AP]M on [A-Z][a-z]+day in Tokyo", out), out
    with wave.open(str(output)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert seconds > 1.5
