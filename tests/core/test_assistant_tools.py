"""The built-in assistant's offline tools: the time anywhere, arithmetic, units."""

from __future__ import annotations

import datetime

import pytest

from vocalis import ToolError
from vocalis.session.assistant import DefaultAssistant
from vocalis.session.assistant_tools import calculate, convert_units, find_zone, time_in
from vocalis.testing import run_virtual

NOON_UTC = datetime.datetime(2026, 12, 6, 12, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("place", "expected"),
    [
        ("Tokyo", "21:00"),
        ("new york", "07:00"),
        ("Europe/Paris", "13:00"),
        ("Los Angeles", "04:00"),
        ("Sydney", "23:00"),
    ],
)
def test_the_time_in_a_city(place: str, expected: str) -> None:
    assert expected in time_in(place, NOON_UTC) and place.strip() in time_in(place, NOON_UTC)


def test_the_local_time_and_an_unknown_place() -> None:
    assert time_in("", NOON_UTC).startswith("It is Sunday 06 December 2026")
    assert find_zone("Atlantis") is None
    with pytest.raises(ToolError, match="Atlantis"):
        time_in("Atlantis", NOON_UTC)


@pytest.mark.parametrize(
    ("expression", "result"),
    [("17 * 23", "391"), ("17 times 23", "391"), ("(4 + 6) / 4", "2.5"), ("2^10", "1024"), ("-3 + 1", "-2")],
)
def test_arithmetic(expression: str, result: str) -> None:
    assert calculate(expression).endswith(f"= {result}")


@pytest.mark.parametrize("expression", ["__import__('os').system('true')", "1/0", "9**9**9", "x + 1", "'a' * 3"])
def test_anything_but_arithmetic_is_refused(expression: str) -> None:
    with pytest.raises(ToolError):
        calculate(expression)


@pytest.mark.parametrize(
    ("value", "source", "target", "shown"),
    [
        (10, "miles", "kilometers", "16.09"),
        (100, "fahrenheit", "celsius", "37.78"),
        (5, "kg", "pounds", "11.02"),
        (3, "meters", "feet", "9.843"),
        (0, "°C", "K", "273.1"),
        (90, "minutes", "hours", "1.5"),
    ],
)
def test_unit_conversions(value: float, source: str, target: str, shown: str) -> None:
    assert f" is {shown} " in convert_units(value, source, target)


def test_units_that_do_not_convert_say_why() -> None:
    with pytest.raises(ToolError, match="don't convert"):
        convert_units(1, "kg", "miles")
    with pytest.raises(ToolError, match="furlong"):
        convert_units(1, "furlong", "miles")


def test_the_assistant_offers_its_tools_with_schemas() -> None:
    tools = {tool.name: tool for tool in DefaultAssistant().tools}
    assert set(tools) == {"current_time", "calculate", "convert_units"}
    assert tools["convert_units"].parameters["required"] == ["value", "from_unit", "to_unit"]
    agent = DefaultAssistant()
    result = run_virtual(agent.tools[1].bind(agent).invoke('{"expression": "6 * 7"}'))
    assert result == "6 * 7 = 42"
