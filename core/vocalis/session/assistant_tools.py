"""The built-in assistant's tools: the time anywhere, arithmetic, unit conversion.

They work offline and answer in short spoken sentences. Each refuses what it
cannot do with a :class:`~vocalis.ToolError` the LLM can read out.
"""

from __future__ import annotations

import ast
import datetime
import functools
import math
import operator
import zoneinfo
from collections.abc import Callable

from vocalis.tools.arguments import ToolError

# -- time ------------------------------------------------------------------------


@functools.cache
def _zone_names() -> frozenset[str]:
    """The IANA zone names (reading them walks the zone database: once is enough)."""
    return frozenset(zoneinfo.available_timezones())


@functools.cache
def _zones_by_city() -> dict[str, str]:
    """City (the last part of an IANA zone name, lower case) -> zone name."""
    zones: dict[str, str] = {}
    for name in sorted(_zone_names()):
        if "/" in name and not name.startswith(("Etc/", "SystemV/", "US/")):
            zones.setdefault(name.rsplit("/", 1)[1].replace("_", " ").lower(), name)
    return zones


def find_zone(place: str) -> zoneinfo.ZoneInfo | None:
    """The time zone of a city ("Tokyo", "new york") or a zone name ("Europe/Paris")."""
    wanted = " ".join(place.replace("_", " ").split()).lower()
    if not wanted:
        return None
    for candidate in (place.strip(), place.strip().replace(" ", "_")):
        if candidate in _zone_names():
            return zoneinfo.ZoneInfo(candidate)
    zones = _zones_by_city()
    name = zones.get(wanted) or zones.get(wanted.split(",")[0].strip())
    return zoneinfo.ZoneInfo(name) if name else None


def time_in(place: str | None, now: datetime.datetime | None = None) -> str:
    """The date and time, here (``place`` None or empty) or in a city."""
    current = now or datetime.datetime.now(datetime.UTC)
    if not place or not place.strip():
        local = current.astimezone()
        return local.strftime("It is %A %d %B %Y, %H:%M here.")
    zone = find_zone(place)
    if zone is None:
        raise ToolError(f"I don't know the time zone of {place}; name a large city near it.")
    return current.astimezone(zone).strftime(f"In {place.strip()} it is %A %d %B, %H:%M.")


# -- arithmetic --------------------------------------------------------------------

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_WORDS = {" plus ": "+", " minus ": "-", " times ": "*", " multiplied by ": "*", " divided by ": "/", " x ": "*"}


def calculate(expression: str) -> str:
    """Evaluate arithmetic: numbers, + - * / // % ** and parentheses, nothing else."""
    text = f" {expression.lower()} "
    for word, symbol in _WORDS.items():
        text = text.replace(word, f" {symbol} ")
    text = text.replace("^", "**").replace("×", "*").replace("÷", "/").strip().rstrip("=?").strip()
    try:
        tree = ast.parse(text, mode="eval")
        value = _evaluate(tree.body)
    except (SyntaxError, ValueError, TypeError, OverflowError, ZeroDivisionError) as exc:
        raise ToolError(f"I can't compute {expression!r}: {exc}") from None
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    elif isinstance(value, float):
        value = round(value, 6)
    return f"{expression.strip()} = {value}"


def _evaluate(node: ast.expr) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 100:
            raise ValueError("the exponent is too large")
        return _BINARY[type(node.op)](left, right)
    raise ValueError("only numbers and + - * / % ** and parentheses are allowed")


# -- units ---------------------------------------------------------------------------

# Factor to the dimension's base unit (metre, kilogram, litre, metre per second, second).
_UNITS: dict[str, tuple[str, float]] = {}
for _dimension, _table in {
    "length": {
        ("m", "meter", "metre", "meters", "metres"): 1.0,
        ("km", "kilometer", "kilometre", "kilometers", "kilometres"): 1000.0,
        ("cm", "centimeter", "centimetre", "centimeters", "centimetres"): 0.01,
        ("mm", "millimeter", "millimetre", "millimeters", "millimetres"): 0.001,
        ("mi", "mile", "miles"): 1609.344,
        ("yd", "yard", "yards"): 0.9144,
        ("ft", "foot", "feet"): 0.3048,
        ("in", "inch", "inches"): 0.0254,
    },
    "mass": {
        ("kg", "kilogram", "kilograms", "kilo", "kilos"): 1.0,
        ("g", "gram", "grams"): 0.001,
        ("lb", "lbs", "pound", "pounds"): 0.45359237,
        ("oz", "ounce", "ounces"): 0.028349523125,
        ("t", "tonne", "tonnes", "ton", "tons"): 1000.0,
    },
    "volume": {
        ("l", "liter", "litre", "liters", "litres"): 1.0,
        ("ml", "milliliter", "millilitre", "milliliters", "millilitres"): 0.001,
        ("gal", "gallon", "gallons"): 3.785411784,
        ("cup", "cups"): 0.2365882365,
    },
    "speed": {
        ("m/s", "meters per second", "metres per second"): 1.0,
        ("km/h", "kmh", "kph", "kilometers per hour", "kilometres per hour"): 1 / 3.6,
        ("mph", "miles per hour"): 0.44704,
        ("knot", "knots"): 1852 / 3600,
    },
    "time": {
        ("s", "sec", "second", "seconds"): 1.0,
        ("min", "minute", "minutes"): 60.0,
        ("h", "hr", "hour", "hours"): 3600.0,
        ("day", "days"): 86400.0,
        ("week", "weeks"): 604800.0,
    },
}.items():
    for _names, _factor in _table.items():
        for _name in _names:
            _UNITS[_name] = (_dimension, _factor)

_TEMPERATURES = {
    "c": "C",
    "celsius": "C",
    "degrees celsius": "C",
    "f": "F",
    "fahrenheit": "F",
    "degrees fahrenheit": "F",
    "k": "K",
    "kelvin": "K",
}


def convert_units(value: float, from_unit: str, to_unit: str) -> str:
    """Convert ``value`` between units of length, mass, volume, speed, time or temperature."""
    source, target = (" ".join(unit.lower().replace("°", "").split()) for unit in (from_unit, to_unit))
    if source in _TEMPERATURES and target in _TEMPERATURES:
        result = _temperature(value, _TEMPERATURES[source], _TEMPERATURES[target])
    else:
        known = [_UNITS.get(source), _UNITS.get(target)]
        if known[0] is None or known[1] is None:
            unknown = from_unit if known[0] is None else to_unit
            raise ToolError(f"I don't know the unit {unknown!r}.")
        (dimension, factor), (other, target_factor) = known[0], known[1]
        if dimension != other:
            raise ToolError(f"{from_unit} is a {dimension} and {to_unit} a {other}: they don't convert.")
        result = value * factor / target_factor
    shown = f"{result:.4g}" if math.isfinite(result) else str(result)
    return f"{value:g} {from_unit.strip()} is {shown} {to_unit.strip()}."


def _temperature(value: float, source: str, target: str) -> float:
    kelvin = {"C": value + 273.15, "F": (value - 32) * 5 / 9 + 273.15, "K": value}[source]
    return {"C": kelvin - 273.15, "F": (kelvin - 273.15) * 9 / 5 + 32, "K": kelvin}[target]
