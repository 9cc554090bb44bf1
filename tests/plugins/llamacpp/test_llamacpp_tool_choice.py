"""Constrained tool calls: decide, then fill, each under a grammar.

The grammars are checked against the real model (llama.cpp enforces them):
whatever the model's judgement, its decision is a tool name or "none", its
arguments are JSON matching the tool's schema, and a spoken answer never
starts like a tool call. Which tool the model picks is measured, not tested
(``scripts/eval_tools.py``; docs/benchmarks.md has the table).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from loguru import logger

from vocalis.chat import ChatContext
from vocalis.session.assistant import INSTRUCTIONS, DefaultAssistant
from vocalis_llamacpp import LlamaCppLLM
from vocalis_llamacpp.engine import Engine
from vocalis_llamacpp.tool_choice import (
    WORDS_ONLY,
    choose_tool,
    decide_request,
    fill_request,
    needs_decision,
)

pytestmark = pytest.mark.slow


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)


CALCULATE = Tool(
    "calculate",
    "Do arithmetic.",
    {
        "type": "object",
        "properties": {"expression": {"type": "string", "maxLength": 40}},
        "required": ["expression"],
    },
)
CONVERT = Tool(
    "convert_units",
    "Convert a quantity between units.",
    {
        "type": "object",
        "properties": {"value": {"type": "number"}, "from_unit": {"type": "string"}, "to_unit": {"type": "string"}},
        "required": ["value", "from_unit", "to_unit"],
    },
)


def ask(question: str) -> ChatContext:
    ctx = ChatContext()
    ctx.add_message("system", INSTRUCTIONS)
    ctx.add_message("user", question)
    return ctx


@pytest.fixture(scope="module")
def engine() -> Engine:
    provider = LlamaCppLLM(_env_file=None)
    return asyncio.run(provider._get_engine())


def run(engine: Engine, request: dict[str, Any]) -> str:
    return engine.complete(request)


@pytest.mark.parametrize("question", ["What is 12 times 7?", "Hello!", "How many feet in 3 meters?"])
def test_the_decision_is_a_tool_name_or_none(engine: Engine, question: str) -> None:
    answer = run(engine, decide_request(ask(question), [CALCULATE, CONVERT])).strip()
    assert answer in {"none", "calculate", "convert_units"}, answer


@pytest.mark.parametrize("tool", [CALCULATE, CONVERT])
def test_arguments_always_match_the_schema(engine: Engine, tool: Tool) -> None:
    arguments = json.loads(run(engine, fill_request(ask("Convert 100 fahrenheit to celsius, or 17 * 23"), tool)))
    properties = tool.parameters["properties"]
    assert set(arguments) <= set(properties) and set(tool.parameters["required"]) <= set(arguments)
    for name, value in arguments.items():
        expected = {"string": str, "number": (int, float)}[properties[name]["type"]]
        assert isinstance(value, expected), arguments
    if "expression" in arguments:
        assert len(arguments["expression"]) <= 40  # maxLength holds too


def test_a_spoken_answer_never_starts_like_a_tool_call(engine: Engine) -> None:
    ctx = ask('Answer only with the JSON object {"name": "calculate"}.')
    request = {
        "messages": [{"role": "user", "content": ctx.items[-1].content}],
        "max_tokens": 24,
        "grammar": WORDS_ONLY,
    }
    text = run(engine, request)
    assert text and text.lstrip()[:1] not in "{<`[", text


def test_one_tool_round_per_user_turn() -> None:
    ctx = ask("What is 2 plus 2?")
    assert needs_decision(ctx, [CALCULATE]) and not needs_decision(ctx, [])
    ctx.add_function_call("call_1", "calculate", '{"expression": "2+2"}')
    ctx.add_function_output("call_1", "calculate", "4")
    assert not needs_decision(ctx, [CALCULATE])


def test_choose_tool_fills_only_a_chosen_tool() -> None:
    asked: list[dict[str, Any]] = []

    def generate(request: dict[str, Any]) -> str:
        asked.append(request)
        grammar = request["grammar"]
        if '"yes" | "no"' in grammar:
            return "yes"
        return "calculate" if '"calculate"' in grammar else '{"expression": "2+2"}'

    call = choose_tool(generate, ask("What is 2 plus 2?"), [CALCULATE, CONVERT])
    assert call is not None and call.name == "calculate" and json.loads(call.arguments) == {"expression": "2+2"}
    assert len(asked) == 3  # decide, confirm, fill
    assert choose_tool(lambda request: "none", ask("Hi"), [CALCULATE]) is None


def test_the_assistant_chats_with_its_tools_and_no_warning() -> None:
    """SmolLM2's template cannot present tools: constrained calls need no template, so nothing warns."""
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING")
    try:
        provider = LlamaCppLLM(tool_calls="constrained", _env_file=None)
        tools = DefaultAssistant().tools

        async def go() -> list[Any]:
            return [chunk async for chunk in provider.chat(ask("What is the time in Tokyo?"), tools=tools)]

        chunks = asyncio.run(go())
    finally:
        logger.remove(sink)
    assert chunks and warnings == []
    for call in (call for chunk in chunks for call in chunk.tool_calls):
        assert call.name in {tool.name for tool in tools}
        json.loads(call.arguments)


def test_the_bundled_model_is_not_asked_to_choose_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """It cannot (0 of 10): by default it answers in words at once, with no decision requests."""
    import vocalis_llamacpp.llm as llm_module

    def fail(*args: Any) -> None:
        raise AssertionError("a tool decision was made for the bundled model")

    monkeypatch.setattr(llm_module, "choose_tool", fail)
    provider = LlamaCppLLM(_env_file=None)
    assert provider.settings.tool_calls == "auto" and provider._tool_mode() == "off"
    assert LlamaCppLLM(model="/any/model.gguf", _env_file=None)._tool_mode() == "constrained"

    async def go() -> list[Any]:
        return [chunk async for chunk in provider.chat(ask("What is 2 plus 2?"), tools=DefaultAssistant().tools)]

    chunks = asyncio.run(go())
    assert "".join(chunk.text for chunk in chunks).strip() and not any(chunk.tool_calls for chunk in chunks)
