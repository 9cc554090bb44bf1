"""What a tool call gets: the LLM's arguments, parsed strictly, and its context.

Also the errors a tool raises (:class:`ToolError`) or that bad arguments raise
(:class:`ToolArgumentsError`), with readable messages for the LLM.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

if TYPE_CHECKING:
    from vocalis.session_api import AgentAPI, SessionAPI

_JSON_TYPES = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}


class ToolError(Exception):
    """Raise from a tool to hand the LLM an error message instead of a result."""


class ToolArgumentsError(ToolError):
    """The LLM's arguments were malformed JSON or violated the tool's schema."""


@dataclass
class ToolContext:
    """Call details, injected into a parameter annotated with ``ToolContext``.

    Such a parameter (any name) is not part of the tool's JSON schema.

    Attributes:
        call_id: The LLM's id for this call.
        tool_name: The tool being called.
        session: The running session, if any.
        agent: The agent that owns the tool, if any.
    """

    call_id: str
    tool_name: str
    session: SessionAPI | None = None
    agent: AgentAPI | None = None


def parse_tool_arguments(arguments: str | bytes | Mapping[str, Any] | None, *, tool: str) -> dict[str, Any]:
    """Parse a model's tool-call arguments strictly, for any kind of tool.

    Standard JSON only: ``NaN``/``Infinity``, numbers out of range, repeated
    keys and absurd nesting are refused rather than passed on. Empty text,
    ``"null"`` and None mean no arguments.

    Args:
        arguments: JSON text (str or UTF-8 bytes) or an already-parsed mapping.
        tool: The tool's name, for the error message.

    Raises:
        ToolArgumentsError: The arguments are not a JSON object, with the reason.
    """
    if isinstance(arguments, Mapping):
        return dict(arguments)
    prefix = f"Invalid arguments for tool {tool!r}"
    if isinstance(arguments, bytes | bytearray):
        try:
            arguments = arguments.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolArgumentsError(f"{prefix}: not UTF-8 text") from None
    if arguments is None:
        return {}
    if not isinstance(arguments, str):
        # Unreachable for type-checked callers; a model adapter may still pass anything.
        kind = type(arguments).__name__
        raise ToolArgumentsError(f"{prefix}: expected JSON text or a mapping, got {kind}")
    if not arguments.strip():
        return {}
    try:
        value = json.loads(
            arguments,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as exc:
        where = f"at line {exc.lineno} column {exc.colno}"
        raise ToolArgumentsError(f"{prefix}: not valid JSON ({exc.msg} {where})") from exc
    except _StrictJSONError as exc:
        raise ToolArgumentsError(f"{prefix}: {exc}") from None
    except RecursionError:
        raise ToolArgumentsError(f"{prefix}: JSON nested too deeply") from None
    if value is None:  # some models send "null" for a call without arguments
        return {}
    if not isinstance(value, dict):
        kind = _JSON_TYPES.get(type(value), type(value).__name__)
        raise ToolArgumentsError(f"{prefix}: expected a JSON object, got a JSON {kind}")
    return value


class _StrictJSONError(ValueError):
    """JSON that Python's parser takes but the JSON standard (or sense) does not."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key is ambiguous: refuse it rather than silently keep the last.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _StrictJSONError(f"duplicate key {_short(key)} in the JSON object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise _StrictJSONError(f"{name} is not a valid JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _StrictJSONError(f"the number {_short(text)} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > 400:  # int() of thousands of digits is slow, and no tool needs it
        raise _StrictJSONError(f"an integer of {len(text)} digits is too long")
    return int(text)


def _short(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters: arguments from a model may be huge."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def summarize_validation_error(exc: ValidationError, limit: int = 5) -> str:
    """What was wrong with the arguments, readable by the LLM: the first ``limit`` problems."""
    parts: list[str] = []
    errors = exc.errors(include_url=False)
    for err in errors[:limit]:
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unexpected argument {_short(loc)}")
        elif err["type"] == "missing":
            parts.append(f"missing required argument {_short(loc)}")
        else:
            got = reprlib.repr(err.get("input"))
            where = loc if len(loc) <= 60 else f"{loc[:57]}..."
            parts.append(f"{where or 'arguments'}: {err['msg']} (got {got})")
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more problems")
    return "; ".join(parts)
