"""Function tools: schemas from type hints, argument validation, invocation."""

from __future__ import annotations

import asyncio
import json
import threading
from enum import Enum
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from vocalis.tools.function import (
    FunctionTool,
    ToolArgumentsError,
    ToolContext,
    ToolError,
    as_function_tool,
    find_function_tools,
    function_tool,
)

# Types used in tool signatures live at module level: hints are resolved
# against the function's globals.


class Color(Enum):
    RED = "red"
    BLUE = "blue"


class Point(BaseModel):
    """A point on the map."""

    x: int
    y: int = 0


class Route(BaseModel):
    start: Point
    stops: list[Point] = []


class Node(BaseModel):
    name: str
    children: list[Node] = []


def _walk(node: Any) -> Any:
    """Every dict inside a schema, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


# -- schemas -----------------------------------------------------------------------


def test_schema_for_primitives_and_required() -> None:
    @function_tool
    def f(s: str, i: int, x: float, b: bool, opt: int = 3) -> None: ...

    assert f.parameters == {
        "type": "object",
        "properties": {
            "s": {"type": "string"},
            "i": {"type": "integer"},
            "x": {"type": "number"},
            "b": {"type": "boolean"},
            "opt": {"type": "integer", "default": 3},
        },
        "required": ["s", "i", "x", "b"],
        "additionalProperties": False,
    }


def test_schema_for_containers_literals_enums_and_optionals() -> None:
    @function_tool
    def f(
        tags: list[str],
        unit: Literal["c", "f"] = "c",
        color: Color = Color.RED,
        limit: int | None = None,
    ) -> None: ...

    props = f.parameters["properties"]
    assert props["tags"] == {"type": "array", "items": {"type": "string"}}
    assert props["unit"] == {"type": "string", "enum": ["c", "f"], "default": "c"}
    assert props["color"]["enum"] == ["red", "blue"]
    assert props["color"]["default"] == "red"
    assert props["limit"] == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
    assert f.parameters["required"] == ["tags"]


def test_schema_for_annotated_field_and_plain_string() -> None:
    @function_tool
    def f(
        n: Annotated[int, Field(description="How many.", ge=1, le=10)],
        name: Annotated[str, "Who to greet."],
    ) -> None: ...

    props = f.parameters["properties"]
    assert props["n"] == {
        "type": "integer",
        "description": "How many.",
        "minimum": 1,
        "maximum": 10,
    }
    assert props["name"] == {"type": "string", "description": "Who to greet."}


def test_schema_inlines_nested_models_without_titles() -> None:
    @function_tool
    def plan(route: Route, title: str) -> None: ...

    params = plan.parameters
    assert "$defs" not in params
    assert not any("$ref" in node for node in _walk(params))
    assert not any(isinstance(node.get("title"), str) for node in _walk(params))
    assert set(params["properties"]) == {"route", "title"}  # a param may be called "title"
    route = params["properties"]["route"]
    assert route["type"] == "object" and route["required"] == ["start"]
    start = route["properties"]["start"]
    assert start["description"] == "A point on the map."
    assert start["properties"] == {"x": {"type": "integer"}, "y": {"type": "integer", "default": 0}}
    assert route["properties"]["stops"]["items"]["properties"]["x"] == {"type": "integer"}
    json.dumps(params)  # plain JSON data


def test_schema_keeps_defs_for_recursive_models() -> None:
    @function_tool
    def tree(root: Node) -> None: ...

    params = tree.parameters
    assert params["properties"]["root"] == {"$ref": "#/$defs/Node"}
    node = params["$defs"]["Node"]
    assert node["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert "title" not in node


def test_odd_parameter_names_work() -> None:
    @function_tool
    def f(json: str, _private: int = 1, model_config: bool = False) -> tuple[str, int, bool]:
        return json, _private, model_config

    assert list(f.parameters["properties"]) == ["json", "_private", "model_config"]
    assert asyncio.run(f.invoke('{"json": "j", "_private": 2}')) == ("j", 2, False)


def test_field_as_default_value() -> None:
    @function_tool
    def f(n: int = Field(5, ge=1, description="Count.")) -> int:
        return n

    assert f.parameters["properties"]["n"] == {
        "type": "integer",
        "default": 5,
        "minimum": 1,
        "description": "Count.",
    }
    assert f.parameters["required"] == []


# -- names and descriptions --------------------------------------------------------------


def test_description_from_docstring_and_args_section() -> None:
    @function_tool
    def lookup(city: str, days: int = 1, units: Annotated[str, "Unit system."] = "metric") -> str:
        """Look up the weather
        for a city.

        Longer explanation that is not part of the description.

        Args:
            city: The city name,
                e.g. "Paris".
            days (int): How many days ahead.
            units: Ignored: the Annotated text wins.

        Returns:
            A forecast.
        """
        return city

    assert lookup.name == "lookup"
    assert lookup.description == "Look up the weather for a city."
    props = lookup.parameters["properties"]
    assert props["city"]["description"] == 'The city name, e.g. "Paris".'
    assert props["days"]["description"] == "How many days ahead."
    assert props["units"]["description"] == "Unit system."


def test_field_description_beats_docstring() -> None:
    @function_tool
    def f(n: Annotated[int, Field(description="From Field.")]) -> None:
        """Do it.

        Args:
            n: From docstring.
        """

    assert f.parameters["properties"]["n"]["description"] == "From Field."


def test_docstring_starting_with_args_has_empty_description() -> None:
    @function_tool
    def f(n: int) -> None:
        """Args:
        n: A number.
        """

    @function_tool
    def g() -> None: ...

    assert f.description == ""
    assert g.description == "" and g.parameters["properties"] == {}


def test_decorator_options_override_name_and_description() -> None:
    @function_tool(name="get-time_v2", description="Current time.")
    def whatever() -> str:
        """Ignored."""
        return "noon"

    assert isinstance(whatever, FunctionTool)
    assert (whatever.name, whatever.description) == ("get-time_v2", "Current time.")
    assert whatever() == "noon"  # still callable directly


@pytest.mark.parametrize("name", ["has space", "", "x" * 65, "dot.name", "ümlaut"])
def test_invalid_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="invalid tool name"):
        function_tool(name=name)(lambda: None)


def test_lambda_needs_a_name() -> None:
    with pytest.raises(ValueError, match="<lambda>"):
        as_function_tool(lambda: None)
    assert as_function_tool(function_tool(name="noop")(lambda: None)).name == "noop"


def test_unannotated_and_variadic_parameters_are_rejected() -> None:
    def untyped(a: int, b):  # type: ignore[no-untyped-def]
        return a

    def star(*args: int) -> None: ...

    def kw(**kwargs: int) -> None: ...

    with pytest.raises(TypeError, match="'b' has no type annotation"):
        function_tool(untyped)
    with pytest.raises(TypeError, match="variadic"):
        function_tool(star)
    with pytest.raises(TypeError, match="variadic"):
        function_tool(kw)


def test_provider_schemas() -> None:
    @function_tool
    def ping(host: str) -> str:
        """Ping a host."""
        return host

    openai = ping.to_openai_schema()
    assert openai == {
        "type": "function",
        "function": {"name": "ping", "description": "Ping a host.", "parameters": ping.parameters},
    }
    anthropic = ping.to_anthropic_schema()
    assert anthropic == {
        "name": "ping",
        "description": "Ping a host.",
        "input_schema": ping.parameters,
    }
    openai["function"]["parameters"]["properties"].clear()  # callers may mutate their copy
    assert "host" in ping.parameters["properties"]


# -- invoke ------------------------------------------------------------------------------


@function_tool
def describe(color: Color, where: Point, count: int = 1, note: str | None = None) -> dict[str, Any]:
    """Return what arrived, to check conversion."""
    return {"color": color, "where": where, "count": count, "note": note}


async def test_invoke_validates_and_converts() -> None:
    result = await describe.invoke('{"color": "blue", "where": {"x": 1}, "count": "3"}')
    assert result["color"] is Color.BLUE
    assert result["where"] == Point(x=1, y=0)
    assert result["count"] == 3 and result["note"] is None


async def test_invoke_accepts_a_mapping() -> None:
    result = await describe.invoke({"color": "red", "where": {"x": 2, "y": 5}})
    assert result["color"] is Color.RED and result["where"].y == 5


@pytest.mark.parametrize("arguments", [None, "", "  ", "null", "{}"])
async def test_invoke_empty_arguments(arguments: str | None) -> None:
    @function_tool
    async def now(fmt: str = "iso") -> str:
        return fmt

    assert await now.invoke(arguments) == "iso"


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ('{"color": "red", "where": {"x": 1}', "not valid JSON"),
        ('["red"]', "expected a JSON object, got a JSON array"),
        ('"red"', "expected a JSON object, got a JSON string"),
        ('{"color": "green", "where": {"x": 1}}', "color: Input should be 'red' or 'blue'"),
        ('{"color": "red", "where": {"x": "far"}}', "where.x: Input should be a valid integer"),
        ('{"color": "red"}', "missing required argument 'where'"),
        ('{"color": "red", "where": {"x": 1}, "colour": "red"}', "unexpected argument 'colour'"),
    ],
)
async def test_invoke_rejects_bad_arguments(arguments: str, fragment: str) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        await describe.invoke(arguments)
    message = str(info.value)
    assert message.startswith("Invalid arguments for tool 'describe':")
    assert fragment in message
    assert "errors.pydantic.dev" not in message


async def test_sync_tool_runs_in_a_worker_thread() -> None:
    @function_tool
    def where_am_i() -> bool:
        return threading.current_thread() is not threading.main_thread()

    assert await where_am_i.invoke(None) is True


async def test_blocking_sync_tool_does_not_block_the_loop() -> None:
    released = threading.Event()

    @function_tool
    def wait_for_loop() -> bool:
        return released.wait(timeout=5)

    task = asyncio.create_task(wait_for_loop.invoke(None))
    await asyncio.sleep(0.01)  # only reachable if the tool isn't hogging the loop
    released.set()
    assert await asyncio.wait_for(task, 5) is True


async def test_async_tool_runs_on_the_loop() -> None:
    @function_tool
    async def on_loop(delay: float) -> bool:
        await asyncio.sleep(delay)
        return threading.current_thread() is threading.main_thread()

    assert await on_loop.invoke('{"delay": 0}') is True


async def test_positional_only_parameters() -> None:
    @function_tool
    def sub(a: int, b: int, /) -> int:
        return a - b

    assert await sub.invoke({"b": 1, "a": 5}) == 4


async def test_tool_errors_propagate() -> None:
    @function_tool
    async def refuse() -> None:
        raise ToolError("no rooms left")

    @function_tool
    def crash() -> None:
        raise RuntimeError("bug")

    with pytest.raises(ToolError, match="no rooms left") as info:
        await refuse.invoke(None)
    assert not isinstance(info.value, ToolArgumentsError)
    with pytest.raises(RuntimeError, match="bug"):
        await crash.invoke(None)
    assert issubclass(ToolArgumentsError, ToolError)


# -- ToolContext -----------------------------------------------------------------------


async def test_tool_context_is_injected_and_hidden_from_schema() -> None:
    @function_tool
    def whoami(ctx: ToolContext, greeting: str = "hi") -> tuple[str, str, Any]:
        return ctx.call_id, greeting, ctx.session

    assert whoami.parameters["properties"] == {"greeting": {"type": "string", "default": "hi"}}
    assert whoami.parameters["required"] == []
    session = object()
    context = ToolContext(call_id="call_9", tool_name="whoami", session=session)
    assert await whoami.invoke('{"greeting": "yo"}', context=context) == ("call_9", "yo", session)
    # Without a context, the tool still gets one.
    assert (await whoami.invoke(None))[0] == ""
    with pytest.raises(ToolArgumentsError, match="unexpected argument 'ctx'"):
        await whoami.invoke('{"ctx": {}}')


async def test_optional_tool_context_is_injected() -> None:
    @function_tool
    async def named(run: ToolContext | None = None) -> str:
        assert run is not None
        return run.tool_name

    assert named.parameters["properties"] == {}
    assert await named.invoke(None, context=ToolContext("c", "named")) == "named"


# -- methods -------------------------------------------------------------------------


class Booker:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.calls: list[str] = []

    @function_tool
    async def book(self, room: str, nights: int = 1) -> str:
        """Book a room.

        Args:
            room: Room name.
        """
        self.calls.append(room)
        return f"{self.prefix}:{room}x{nights}"

    @function_tool(name="cancel_booking")
    def cancel(self, room: str) -> bool:
        """Cancel a booking."""
        return threading.current_thread() is not threading.main_thread()

    def helper(self) -> str:  # not a tool
        return "help"


class VipBooker(Booker):
    @function_tool
    async def book(self, room: str, nights: int = 1) -> str:
        """Book a room, with champagne."""
        return "vip:" + await Booker.book(self, room, nights)

    @function_tool
    def upgrade(self, ctx: ToolContext) -> str:
        return f"{self.prefix}:{ctx.call_id}"


class NoCancelBooker(Booker):
    def cancel(self, room: str) -> bool:  # type: ignore[override]
        return False


def test_method_schema_excludes_self() -> None:
    assert Booker.book.parameters["properties"] == {
        "room": {"type": "string", "description": "Room name."},
        "nights": {"type": "integer", "default": 1},
    }
    assert Booker.book.description == "Book a room."


async def test_find_function_tools_binds_methods() -> None:
    booker = Booker("b")
    tools = find_function_tools(booker)
    assert [t.name for t in tools] == ["book", "cancel_booking"]
    assert await tools[0].invoke('{"room": "blue"}') == "b:bluex1"
    assert booker.calls == ["blue"]
    assert await tools[1].invoke({"room": "blue"}) is True  # sync method, worker thread


async def test_find_function_tools_in_subclass_order_and_overrides() -> None:
    vip = VipBooker("v")
    tools = find_function_tools(vip)
    assert [t.name for t in tools] == ["book", "cancel_booking", "upgrade"]
    assert tools[0].description == "Book a room, with champagne."
    assert await tools[0].invoke({"room": "gold", "nights": 2}) == "vip:v:goldx2"
    assert await tools[2].invoke(None, context=ToolContext("c7", "upgrade")) == "v:c7"
    assert tools[2].parameters["properties"] == {}
    # Overriding a tool with a plain method removes the tool.
    assert [t.name for t in find_function_tools(NoCancelBooker("n"))] == ["book"]
    assert find_function_tools(object()) == []


async def test_method_tool_still_works_as_a_method() -> None:
    booker = Booker("m")
    assert await booker.book("red", 3) == "m:redx3"
    assert booker.cancel("red") is False  # a direct call runs in this thread
    bound = booker.book
    assert isinstance(bound, FunctionTool) and bound.name == "book"
    assert await bound.invoke({"room": "x"}) == "m:xx1"
    # Accessed on the class it is unbound: a plain call needs self, invoke refuses.
    assert await Booker.book(booker, "y") == "m:yx1"
    with pytest.raises(TypeError, match="bind it to an instance"):
        await Booker.book.invoke({"room": "z"})
    assert await Booker.book.bind(booker).invoke({"room": "z"}) == "m:zx1"


def test_duplicate_tool_names_on_a_class_are_rejected() -> None:
    class Clash:
        @function_tool(name="same")
        def a(self) -> None: ...

        @function_tool(name="same")
        def b(self) -> None: ...

    with pytest.raises(ValueError, match="more than one tool named 'same'"):
        find_function_tools(Clash())


def test_plain_function_tools_cannot_be_bound() -> None:
    with pytest.raises(TypeError, match="not a method"):
        describe.bind(object())

    class Holder:
        tool = describe  # a plain tool stored on a class stays unbound

    assert Holder().tool is describe
    assert find_function_tools(Holder()) == [describe]


# -- as_function_tool -----------------------------------------------------------------


async def test_as_function_tool_accepts_tools_and_plain_callables() -> None:
    assert as_function_tool(describe) is describe

    def add(a: int, b: int = 2) -> int:
        """Add numbers."""
        return a + b

    tool = as_function_tool(add)
    assert (tool.name, tool.description) == ("add", "Add numbers.")
    assert tool.parameters["required"] == ["a"]
    assert await tool.invoke('{"a": 1}') == 3

    class Calc:
        def __init__(self) -> None:
            self.offset = 10

        def shift(self, n: int) -> int:
            """Shift n."""
            return n + self.offset

    method_tool = as_function_tool(Calc().shift)  # an undecorated bound method
    assert list(method_tool.parameters["properties"]) == ["n"]
    assert await method_tool.invoke({"n": 1}) == 11

    with pytest.raises(TypeError, match="plain function or method"):
        as_function_tool(42)  # type: ignore[arg-type]
