"""Property-based fuzzing of the LLM's tool calls: malformed JSON, schema violations, odd names.

Every call gets exactly one output; a bad call gets an error output that names
the problem; a tool body only ever runs with arguments that satisfy its JSON
schema; the session answers afterwards.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

import jsonschema
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from session_helpers import conversation

from vocalis import Agent, ToolContext, function_tool
from vocalis.providers.llm import ToolCallRequest
from vocalis.testing import FakeLLM, FakeResponse, run_virtual
from vocalis.tools.function import FunctionTool, ToolArgumentsError

# Deterministic in CI: fixed derandomised examples, no example database on disk.
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

RECEIVED: list[tuple[str, dict[str, Any]]] = []
"""What each tool body was called with (cleared per example)."""


class Point(BaseModel):
    x: int
    y: int


@function_tool
async def add(a: int, b: int) -> int:
    """Add two integers."""
    RECEIVED.append(("add", {"a": a, "b": b}))
    return a + b


@function_tool
def ratio(x: float, y: float = 1.0) -> str:
    """Divide (a sync tool: runs in a worker thread)."""
    RECEIVED.append(("ratio", {"x": x, "y": y}))
    return "ok"


@function_tool
async def book(
    date: str,
    guests: list[str],
    mode: Literal["fast", "slow"] = "fast",
    options: dict[str, bool] | None = None,
    party: Annotated[int, Field(ge=1, le=12)] = 2,
) -> str:
    """Book a table."""
    RECEIVED.append(("book", {"date": date, "guests": guests, "mode": mode, "options": options, "party": party}))
    return "booked"


@function_tool
async def move(to: Point, context: ToolContext) -> str:
    """Move to a point."""
    assert isinstance(context, ToolContext)
    RECEIVED.append(("move", {"to": to.model_dump()}))
    return "moved"


@function_tool
async def ping() -> str:
    """No arguments at all."""
    RECEIVED.append(("ping", {}))
    return "pong"


TOOLS: dict[str, FunctionTool] = {t.name: t for t in (add, ratio, book, move, ping)}

# -- argument text ------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["2024-05-01", "fast", "slow", "5", "nan", "1e400", "\ud800"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)
param_names = st.sampled_from(["a", "b", "x", "y", "date", "guests", "mode", "options", "party", "to", "context", "zz"])
objects = st.dictionaries(param_names, json_values, max_size=5)


def _valid_for(name: str) -> st.SearchStrategy[dict[str, Any]]:
    return {
        "add": st.fixed_dictionaries({"a": st.integers(-1000, 1000), "b": st.integers(-1000, 1000)}),
        "ratio": st.fixed_dictionaries({"x": st.floats(-1e6, 1e6)}, optional={"y": st.floats(-1e6, 1e6)}),
        "book": st.fixed_dictionaries(
            {"date": st.text(max_size=10), "guests": st.lists(st.text(max_size=5), max_size=3)},
            optional={
                "mode": st.sampled_from(["fast", "slow"]),
                "party": st.integers(1, 12),
                "options": st.dictionaries(st.text(max_size=4), st.booleans(), max_size=2),
            },
        ),
        "move": st.fixed_dictionaries({"to": st.fixed_dictionaries({"x": st.integers(), "y": st.integers()})}),
        "ping": st.just({}),
    }[name]


@st.composite
def argument_text(draw: st.DrawFn, tool: str) -> str:
    """What a model might send: valid, wrong, truncated, duplicated, nested, huge."""
    value = draw(st.one_of(_valid_for(tool), objects, json_values))
    text = json.dumps(value, allow_nan=True)
    kind = draw(st.sampled_from(["as_is", "as_is", "truncated", "duplicate", "nested", "huge", "garbage", "empty"]))
    if kind == "truncated" and text:
        return text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if kind == "duplicate" and isinstance(value, dict) and value:
        key = next(iter(value))
        return text[:-1] + f", {json.dumps(key)}: {json.dumps(value[key])}" + "}"
    if kind == "nested":
        depth = draw(st.sampled_from([50, 2_000, 100_000]))
        return '{"a": ' + "[" * depth + "]" * depth + "}"
    if kind == "huge":
        return json.dumps({draw(param_names): "x" * 1_000_000, "k" * 100_000: 1})
    if kind == "garbage":
        return draw(st.sampled_from(["{", "}", "null", "[]", '"x"', "NaN", "{'a': 1}", "{a: 1}", "\x00", "1" * 5000]))
    if kind == "empty":
        return draw(st.sampled_from(["", "   ", "{}"]))
    return text


def strict_parse(text: str) -> Any:
    """Standard JSON only (no NaN/Infinity, no repeated keys); raises ValueError."""

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

    return json.loads(text, object_pairs_hook=pairs, parse_constant=constant, parse_float=number)


def schema_valid(tool: FunctionTool, arguments: str) -> bool | None:
    """True/False when the text is standard JSON satisfying/violating the schema.

    None when it holds a lone surrogate (pydantic refuses one in a ``str``
    but not inside a ``list[str]``; either outcome is acceptable).
    """
    if not arguments.strip():
        arguments = "{}"
    try:
        value = strict_parse(arguments)
    except (ValueError, RecursionError):
        return False
    if value is None:
        value = {}
    if re.search("[\ud800-\udfff]", json.dumps(value, ensure_ascii=False)):
        return None
    try:
        jsonschema.validate(value, tool.parameters)
    except jsonschema.ValidationError:
        return False
    return True


def assert_received_valid() -> None:
    for name, args in RECEIVED:
        given_args = {k: v for k, v in args.items() if v is not None or k != "options"}
        jsonschema.validate(given_args, TOOLS[name].parameters)
        for value in given_args.values():
            assert value == value, "NaN reached a tool"


calls = st.sampled_from(sorted(TOOLS)).flatmap(lambda tool: st.tuples(st.just(tool), argument_text(tool)))


# -- FunctionTool.invoke directly -------------------------------------------------------


@settings(FUZZ, max_examples=250)
# Each of these once crashed the call or reached the tool.
@example(call=("add", "[" * 100_000))
@example(call=("add", '{"a": ' + "1" * 5_000 + ', "b": 1}'))
@example(call=("add", '{"a": 1, "a": 2, "b": 3}'))
@example(call=("ratio", '{"x": NaN}'))
@example(call=("ratio", '{"x": 1e400}'))
@example(call=("ratio", '{"x": "nan"}'))
@given(call=calls)
def test_invoke_runs_only_valid_arguments_and_names_every_problem(call: tuple[str, str]) -> None:
    RECEIVED.clear()
    name, arguments = call
    tool = TOOLS[name]
    expected = schema_valid(tool, arguments)

    async def main() -> Any:
        return await tool.invoke(arguments, context=ToolContext("call_1", name))

    try:
        run_virtual(main())
    except ToolArgumentsError as exc:
        message = str(exc)
        assert message.startswith(f"Invalid arguments for tool {name!r}: "), message
        assert len(message) < 1_000, "the model gets a short, readable reason"
        assert expected is not True, f"valid arguments refused: {arguments[:200]!r}: {message}"
        assert RECEIVED == []
        return
    assert expected is not False and (expected is True or arguments.strip() in ("", "null", "{}") or RECEIVED), (
        arguments[:200]
    )
    assert len(RECEIVED) == 1
    assert_received_valid()


@settings(FUZZ, max_examples=60)
@given(
    arguments=st.one_of(
        st.none(),
        st.integers(),
        st.lists(st.integers(), max_size=2),
        st.binary(max_size=8),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )
)
def test_invoke_takes_non_text_arguments_without_crashing(arguments: Any) -> None:
    RECEIVED.clear()

    async def main() -> Any:
        return await add.invoke(arguments)

    try:
        run_virtual(main())
    except ToolArgumentsError as exc:
        assert "Invalid arguments for tool 'add'" in str(exc)
        return
    assert_received_valid()


# -- inside a session ---------------------------------------------------------------------

names = st.one_of(st.sampled_from(sorted(TOOLS)), st.sampled_from(["", "nope", "x" * 10_000, "add ", "\x00"]))
session_calls = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(["call_a", "call_b", ""]), st.text(max_size=8)),
        st.one_of(calls, st.tuples(names, st.just("{}"))),
    ),
    min_size=1,
    max_size=5,
)


@settings(FUZZ, max_examples=60)
@given(requested=session_calls)
def test_every_call_gets_one_output_and_the_session_answers(requested: list[tuple[str, tuple[str, str]]]) -> None:
    RECEIVED.clear()
    requests = [ToolCallRequest(call_id, name, arguments) for call_id, (name, arguments) in requested]

    async def main() -> Any:
        llm = FakeLLM([FakeResponse("Let me check.", tool_calls=list(requests)), "Done checking.", "Still here."])
        async with conversation(Agent("Use tools.", tools=list(TOOLS.values())), llm=llm) as conv:
            await conv.session.send_text("do the thing")
            await conv.session.send_text("anyone there?")
        return conv, llm

    conv, llm = run_virtual(main())
    outputs = conv.named("function_call")
    assert len(outputs) == len(requests), "exactly one output per call"
    ids = [o["call_id"] for o in outputs]
    assert len(set(ids)) == len(ids), f"outputs must be told apart: {ids}"
    by_id = {o["call_id"]: o for o in outputs}
    # The model's next request holds each call followed by its one output, ids matching.
    history = llm.requests[1].chat_ctx.to_openai()
    call_ids = [c["id"] for m in history for c in m.get("tool_calls") or []]
    output_ids = [m["tool_call_id"] for m in history if m.get("role") == "tool"]
    assert sorted(call_ids) == sorted(output_ids) == sorted(by_id)
    assert sorted((o["name"], o["arguments"]) for o in outputs) == sorted((r.name, r.arguments) for r in requests)
    for output in outputs:
        tool = TOOLS.get(output["name"])
        verdict = None if tool is None else schema_valid(tool, output["arguments"])
        if tool is None:
            assert output["is_error"] and "unknown tool" in output["output"]
        elif verdict is True:
            assert not output["is_error"], output
        elif verdict is False or output["is_error"]:
            assert output["is_error"] and output["output"].startswith("invalid arguments: "), output
        assert len(output["output"]) < 1_000
    assert_received_valid()
    assert conv.agent_turns()[-1] == "Still here."
    assert {e["source"] for e in conv.errors()} == set(), conv.errors()
