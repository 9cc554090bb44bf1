"""Evaluation scenarios: what the user says, turn by turn, and what to expect.

A scenario file is YAML (JSON is YAML too)::

    scenarios:
      - name: arithmetic
        turns:
          - user: What is 17 times 23?
            expect:
              contains: "391"
              tool_call: {name: calculate, arguments: {expression: "17 * 23"}}
              max_latency: 10
              no_interruption: true
              judge: The reply gives the result of the multiplication.

A turn's ``user`` is typed text (text mode) or text the offline TTS speaks
(audio mode); ``audio`` names a WAV file instead (audio mode only).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Expectations", "Scenario", "ScenarioError", "ToolCallExpectation", "UserTurn", "load_scenarios"]

_EXPECT_KEYS = {"tool_call", "handoff", "contains", "matches", "judge", "max_latency", "no_interruption"}


class ScenarioError(ValueError):
    """A scenario file that cannot be used, with where and why."""


@dataclass(frozen=True, slots=True)
class ToolCallExpectation:
    """A tool the agent must call in the turn.

    Attributes:
        name: The tool's name.
        arguments: Arguments it must be called with (a subset: others may be present).
    """

    name: str
    arguments: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Expectations:
    """What must hold for one turn (unset fields are not checked)."""

    tool_calls: tuple[ToolCallExpectation, ...] = ()
    handoff: str | None = None
    contains: tuple[str, ...] = ()
    matches: tuple[str, ...] = ()
    judge: tuple[str, ...] = ()
    max_latency: float | None = None
    no_interruption: bool = False


@dataclass(frozen=True, slots=True)
class UserTurn:
    """One thing the user says, and what to expect of the agent's answer."""

    text: str | None
    audio: Path | None
    expect: Expectations

    @property
    def label(self) -> str:
        """The turn as shown in reports."""
        return self.text if self.text is not None else str(self.audio)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named conversation: user turns in order, each with expectations."""

    name: str
    turns: tuple[UserTurn, ...]


def _strings(value: object, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) and item for item in items):
        raise ScenarioError(f"{where}: expected a non-empty string or a list of them, got {value!r}")
    return tuple(str(item) for item in items)


def _tool_call(value: object, where: str) -> ToolCallExpectation:
    if isinstance(value, str):
        return ToolCallExpectation(value)
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ScenarioError(f"{where}: expected a tool name or {{name: ..., arguments: {{...}}}}, got {value!r}")
    unknown = set(value) - {"name", "arguments"}
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    arguments = value.get("arguments", {})
    if not isinstance(arguments, dict):
        raise ScenarioError(f"{where}.arguments: expected a mapping, got {arguments!r}")
    return ToolCallExpectation(value["name"], {str(k): v for k, v in arguments.items()})


def _expectations(value: object, where: str) -> Expectations:
    if value is None:
        return Expectations()
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: expected a mapping of expectations, got {value!r}")
    unknown = set(value) - _EXPECT_KEYS
    if unknown:
        raise ScenarioError(
            f"{where}: unknown expectation(s) {', '.join(sorted(map(str, unknown)))} "
            f"(known: {', '.join(sorted(_EXPECT_KEYS))})"
        )
    calls = value.get("tool_call", [])
    calls = calls if isinstance(calls, list) else [calls]
    latency = value.get("max_latency")
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, int | float) or latency <= 0):
        raise ScenarioError(f"{where}.max_latency: expected a positive number of seconds, got {latency!r}")
    handoff = value.get("handoff")
    if handoff is not None and not (isinstance(handoff, str) and handoff):
        raise ScenarioError(f"{where}.handoff: expected an agent name, got {handoff!r}")
    no_interruption = value.get("no_interruption", False)
    if not isinstance(no_interruption, bool):
        raise ScenarioError(f"{where}.no_interruption: expected true or false, got {no_interruption!r}")
    return Expectations(
        tool_calls=tuple(_tool_call(call, f"{where}.tool_call") for call in calls),
        handoff=handoff,
        contains=_strings(value["contains"], f"{where}.contains") if "contains" in value else (),
        matches=_regexes(value["matches"], f"{where}.matches") if "matches" in value else (),
        judge=_strings(value["judge"], f"{where}.judge") if "judge" in value else (),
        max_latency=float(latency) if latency is not None else None,
        no_interruption=no_interruption,
    )


def _regexes(value: object, where: str) -> tuple[str, ...]:
    import re

    patterns = _strings(value, where)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ScenarioError(f"{where}: invalid regular expression {pattern!r}: {exc}") from None
    return patterns


def _turn(value: object, where: str, base: Path) -> UserTurn:
    if isinstance(value, str):
        return UserTurn(value, None, Expectations())
    if not isinstance(value, dict):
        raise ScenarioError(f"{where}: expected a mapping with 'user' or 'audio', got {value!r}")
    unknown = set(value) - {"user", "audio", "expect"}
    if unknown:
        raise ScenarioError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (known: audio, expect, user)"
        )
    text, audio = value.get("user"), value.get("audio")
    if (text is None) == (audio is None):
        raise ScenarioError(f"{where}: give exactly one of 'user' (text) or 'audio' (a WAV path)")
    if text is not None and not (isinstance(text, str) and text.strip()):
        raise ScenarioError(f"{where}.user: expected non-empty text, got {text!r}")
    if audio is not None and not isinstance(audio, str):
        raise ScenarioError(f"{where}.audio: expected a WAV file path, got {audio!r}")
    path = None if audio is None else (base / audio if not Path(audio).is_absolute() else Path(audio))
    return UserTurn(text, path, _expectations(value.get("expect"), f"{where}.expect"))


def parse_scenarios(data: object, *, source: str = "<scenarios>", base: Path | None = None) -> list[Scenario]:
    """Build scenarios from parsed YAML (a mapping with a ``scenarios`` list, or the list).

    Raises:
        ScenarioError: The data does not describe scenarios; the message
            names the place (``scenarios[0].turns[1].expect``) and the problem.
    """
    base = base or Path.cwd()
    items = data.get("scenarios") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise ScenarioError(f"{source}: expected a non-empty 'scenarios' list")
    scenarios: list[Scenario] = []
    for index, item in enumerate(items):
        where = f"{source}: scenarios[{index}]"
        if not isinstance(item, dict):
            raise ScenarioError(f"{where}: expected a mapping with 'name' and 'turns', got {item!r}")
        name = item.get("name", f"scenario {index + 1}")
        turns = item.get("turns")
        if not isinstance(turns, list) or not turns:
            raise ScenarioError(f"{where} ({name}): expected a non-empty 'turns' list")
        parsed = tuple(_turn(turn, f"{where}.turns[{n}]", base) for n, turn in enumerate(turns))
        scenarios.append(Scenario(str(name), parsed))
    return scenarios


def load_scenarios(path: str | Path) -> list[Scenario]:
    """Read a scenario file (YAML; WAV paths in it are relative to the file).

    Raises:
        ScenarioError: Unreadable file, invalid YAML or invalid scenarios.
    """
    path = Path(path)
    # PyYAML has no type information of its own; imported by name so mypy
    # does not need stubs.
    yaml = importlib.import_module("yaml")
    try:
        data: object = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: invalid YAML: {exc}") from None
    return parse_scenarios(data, source=str(path), base=path.parent)
