"""A tool's JSON Schema as the Gemini API's ``Schema`` (an OpenAPI subset).

The API rejects what its ``Schema`` message has no field for
(``additionalProperties``, ``$ref``, ``const``, ``title`` on some models...)
with a 400, and an ``object`` without properties too. So the schema a tool
declares is rewritten: references are inlined, ``["string", "null"]`` and
``anyOf [..., null]`` become ``nullable``, ``const`` an ``enum``, string
formats other than ``enum`` and ``date-time`` are dropped, and what cannot be
said in the subset is said in the description, where the model still reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vocalis.chat.formats import JSONObject

_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
_FORMATS = {
    "string": frozenset({"enum", "date-time"}),
    "number": frozenset({"float", "double"}),
    "integer": frozenset({"int32", "int64"}),
}
_BOUNDS = ("minimum", "maximum", "minItems", "maxItems")
_MAX_DEPTH = 32  # a recursive $ref is cut here rather than followed forever


def to_gemini_schema(schema: Mapping[str, object]) -> JSONObject | None:
    """The ``parameters`` of a function declaration, or None when it takes none.

    Args:
        schema: The tool's JSON Schema (an ``object`` schema).
    """
    bare = schema.get("type", "object") == "object" and not schema.get("properties") and "$ref" not in schema
    if not schema or bare:
        return None
    converted = _convert(schema, schema, 0)
    if converted.get("type") == "object" and not converted.get("properties"):
        return None
    return converted


def _resolve(node: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> Mapping[str, Any]:
    ref = node.get("$ref")
    while isinstance(ref, str) and ref.startswith("#/") and depth < _MAX_DEPTH:
        target: Any = root
        for key in ref[2:].split("/"):
            target = target.get(key.replace("~1", "/").replace("~0", "~")) if isinstance(target, Mapping) else None
        if not isinstance(target, Mapping):
            break
        # Keywords beside the reference (a description) win over the target's.
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        ref = node.get("$ref") if node.get("$ref") != ref else None
        depth += 1
    return node


def _convert(node: Mapping[str, Any], root: Mapping[str, Any], depth: int) -> dict[str, Any]:
    node = _resolve(node, root, depth)
    if depth >= _MAX_DEPTH:
        return {"type": "string", "description": str(node.get("description", "a nested value, as JSON text"))}
    out: dict[str, Any] = {}
    notes: list[str] = []
    wrapped = node.get("allOf")  # a single-branch allOf is how generators wrap a $ref
    if isinstance(wrapped, list) and len(wrapped) == 1 and isinstance(wrapped[0], Mapping):
        node = {**_resolve(wrapped[0], root, depth), **{k: v for k, v in node.items() if k != "allOf"}}
    kind, nullable, variants = _types(node)
    union = node.get("anyOf", node.get("oneOf"))
    if isinstance(union, list):
        branches = [_resolve(b, root, depth) for b in union if isinstance(b, Mapping)]
        if any(b.get("type") == "null" for b in branches):
            nullable = True
        branches = [b for b in branches if b.get("type") != "null"]
        if len(branches) == 1:
            merged = {**branches[0], **{k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}}
            out = _convert(merged, root, depth + 1)
            if nullable:
                out["nullable"] = True
            return out
        if branches:
            out["anyOf"] = [_convert(b, root, depth + 1) for b in branches]
    elif variants:
        out["anyOf"] = [_convert({**node, "type": v}, root, depth + 1) for v in variants]
    if kind is None and "anyOf" not in out:
        kind = "object" if "properties" in node else "array" if "items" in node else None
    choices = node.get("enum", [node["const"]] if "const" in node else None)
    if kind is None and "anyOf" not in out and isinstance(choices, list) and all(isinstance(c, str) for c in choices):
        kind = "string"
    if kind is None and "anyOf" not in out:
        kind = "string"  # an unconstrained value: the model gives it as text
        notes.append("any JSON value")
    if kind is not None and "anyOf" not in out:
        out["type"] = kind
        _typed(node, kind, root, depth, out, notes)
    description = str(node.get("description") or "").strip()
    text = " ".join(part for part in [description, *(f"({note})" for note in notes)] if part)
    if text:
        out["description"] = text
    if nullable:
        out["nullable"] = True
    return out


def _types(node: Mapping[str, Any]) -> tuple[str | None, bool, list[str]]:
    """``(type, nullable, variants)``: variants when several types are allowed."""
    value = node.get("type")
    names = (
        [value]
        if isinstance(value, str)
        else [v for v in value if isinstance(v, str)]
        if isinstance(value, list)
        else []
    )
    nullable = "null" in names
    names = [n for n in names if n in _TYPES]
    if len(names) > 1:
        return None, nullable, names
    return (names[0] if names else None), nullable, []


def _typed(
    node: Mapping[str, Any], kind: str, root: Mapping[str, Any], depth: int, out: dict[str, Any], notes: list[str]
) -> None:
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS.get(kind, ()):
        out["format"] = fmt
    elif isinstance(fmt, str):
        notes.append(f"format: {fmt}")
    choices = node.get("enum", [node["const"]] if "const" in node else None)
    if isinstance(choices, list) and choices:
        if kind == "string" and all(isinstance(c, str) for c in choices):
            out["enum"] = list(choices)
        else:
            notes.append("one of: " + ", ".join(str(c) for c in choices))
    for bound in _BOUNDS:
        value = node.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[bound] = value
    if kind == "array":
        items = node.get("items")
        out["items"] = _convert(items, root, depth + 1) if isinstance(items, Mapping) else {"type": "string"}
    elif kind == "object":
        properties = node.get("properties")
        if isinstance(properties, Mapping) and properties:
            out["properties"] = {
                str(name): _convert(sub if isinstance(sub, Mapping) else {}, root, depth + 1)
                for name, sub in properties.items()
            }
            required = node.get("required")
            if isinstance(required, list):
                wanted = [name for name in required if name in out["properties"]]
                if wanted:
                    out["required"] = wanted
        elif depth > 0:
            # An object of unknown shape cannot be declared (the API wants
            # properties): the model passes it as JSON text instead.
            out["type"] = "string"
            notes.append("a JSON object")
