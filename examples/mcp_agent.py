"""A voice agent whose LLM calls a tool from a stdio MCP server.

Offline, give the local LLM a model that can choose tools (the fast default,
SmolLM2-135M, is too small to)::

    export VOCALIS_LLM_LLAMACPP_MODEL=/path/to/a-tool-capable-model.gguf
    vocalis talk examples/mcp_agent.py --input examples/what_time_tokyo.wav

Or any OpenAI-compatible server as the LLM::

    export VOCALIS_LLM=openai
    export VOCALIS_LLM_OPENAI_BASE_URL=http://127.0.0.1:8080/v1   # or leave unset for OpenAI
    export VOCALIS_LLM_OPENAI_MODEL=your-model
    export VOCALIS_LLM_OPENAI_API_KEY=...                         # if the server needs one

Speech recognition, turn detection and the voice stay offline either way.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vocalis import Agent
from vocalis_mcp import MCPServerStdio

SERVER = Path(__file__).with_name("mcp_time_server.py")


def make_agent() -> Agent:
    """The agent: short spoken answers, tools from the time server."""
    return Agent(
        "You are a voice assistant. Answer in one short spoken sentence, without "
        "markdown. Use the get_local_time tool for any question about the time.",
        mcp_servers=[MCPServerStdio(sys.executable, [str(SERVER)], session_timeout=10.0)],
    )
