"""The MCP example's scenarios (examples/scenarios/mcp_time.yaml) through `vocalis eval`'s runner.

The agent is examples/mcp_agent.py with its real stdio time server; a scripted
LLM stands in for a tool-capable model: it calls ``get_local_time`` when the
user asks for the time and then says the tool's answer, so the scenario checks
the whole path (tool offered by MCP, called, its result spoken).
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Sequence
from pathlib import Path

# Imported here, not on the event loop: the first import builds pydantic schemas for a second.
import mcp.client.stdio  # noqa: F401

from vocalis.chat import ChatContext, FunctionCallOutput
from vocalis.evaluation import load_scenarios
from vocalis.evaluation.runner import run_scenarios
from vocalis.pipeline.cascading import CascadingPipeline
from vocalis.providers.llm import ToolSpec
from vocalis.session.agent import Agent
from vocalis.testing import FakeLLM, FakeResponse, FakeSTT, FakeTTS, FakeVAD

EXAMPLES = Path(__file__).parents[3] / "examples"


def _mcp_agent() -> Agent:
    spec = importlib.util.spec_from_file_location("mcp_agent_example", EXAMPLES / "mcp_agent.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    agent = module.make_agent()
    assert isinstance(agent, Agent)
    return agent


def _tool_using_llm(chat_ctx: ChatContext, tools: Sequence[ToolSpec]) -> FakeResponse:
    last = chat_ctx.items[-1]
    if isinstance(last, FunctionCallOutput):
        return FakeResponse(text=last.output)  # say what the tool answered
    asked = chat_ctx.last_message("user")
    city = re.search(r"in ([A-Z][a-z]+(?: [A-Z][a-z]+)?)", asked.content if asked else "")
    if city and "get_local_time" in [t.name for t in tools]:
        return FakeResponse(tool_calls=[("get_local_time", json.dumps({"city": city.group(1)}))])
    return FakeResponse(text="You are welcome, goodbye.")


def _make() -> tuple[Agent, CascadingPipeline]:
    pipeline = CascadingPipeline(
        stt=FakeSTT([]), llm=FakeLLM([_tool_using_llm]), tts=FakeTTS(), vad=FakeVAD(), turn_detector=None
    )
    return _mcp_agent(), pipeline


async def test_the_mcp_example_scenarios_pass_through_the_real_server() -> None:
    scenarios = load_scenarios(EXAMPLES / "scenarios" / "mcp_time.yaml")
    outcomes = await run_scenarios(scenarios, _make, timeout=60)
    for outcome in outcomes:
        assert outcome.passed, (outcome.scenario.name, outcome.error, [t.failures for t in outcome.turns])


async def test_a_model_that_skips_the_tool_fails_the_scenario() -> None:
    def no_tools() -> tuple[Agent, CascadingPipeline]:
        llm = FakeLLM(["It is noon in Tokyo, I think."])
        return _mcp_agent(), CascadingPipeline(
            stt=FakeSTT([]), llm=llm, tts=FakeTTS(), vad=FakeVAD(), turn_detector=None
        )

    scenarios = load_scenarios(EXAMPLES / "scenarios" / "mcp_time.yaml")[:1]
    (outcome,) = await run_scenarios(scenarios, no_tools, timeout=60)
    assert not outcome.passed
    assert any("get_local_time" in failure for turn in outcome.turns for failure in turn.failures)
