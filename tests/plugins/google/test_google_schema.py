"""Tool schemas as the Gemini API's Schema subset, and server-sent events split anywhere."""

from __future__ import annotations

import json

import pytest
from gemini_shapes import check_schema

from vocalis_google.schema import to_gemini_schema
from vocalis_google.stream import SSEParser

PYDANTIC_STYLE = {
    "type": "object",
    "title": "Args",
    "additionalProperties": False,
    "$defs": {"Unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "title": "Unit"}},
    "properties": {
        "city": {"type": "string", "description": "The city.", "minLength": 1},
        "unit": {"$ref": "#/$defs/Unit", "description": "Which scale."},
        "days": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 7}, {"type": "null"}], "default": None},
        "when": {"type": "string", "format": "date-time"},
        "email": {"type": "string", "format": "email"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "level": {"type": "integer", "enum": [1, 2, 3]},
        "mode": {"const": "fast"},
        "either": {"type": ["string", "number"]},
        "extra": {"type": "object"},
        "anything": {},
    },
    "required": ["city", "ghost"],
}


def test_a_generated_schema_becomes_what_the_api_accepts() -> None:
    schema = to_gemini_schema(PYDANTIC_STYLE)
    assert schema is not None and check_schema(schema, "parameters") is None
    props = schema["properties"]
    assert schema["required"] == ["city"]
    assert props["unit"] == {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Which scale."}
    assert props["days"] == {"type": "integer", "minimum": 1, "maximum": 7, "nullable": True}
    assert props["when"] == {"type": "string", "format": "date-time"}
    assert props["email"] == {"type": "string", "description": "(format: email)"}
    assert props["level"] == {"type": "integer", "description": "(one of: 1, 2, 3)"}
    assert props["mode"] == {"type": "string", "enum": ["fast"]}
    assert props["either"] == {"anyOf": [{"type": "string"}, {"type": "number"}]}
    assert props["extra"]["type"] == "string" and "JSON object" in props["extra"]["description"]
    assert props["anything"]["type"] == "string"


@pytest.mark.parametrize("schema", [{}, {"type": "object", "properties": {}}, {"type": "object"}])
def test_no_parameters_declares_none(schema: dict[str, object]) -> None:
    assert to_gemini_schema(schema) is None


def test_a_recursive_reference_is_cut() -> None:
    schema = {"type": "object", "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
              "properties": {"head": {"$ref": "#/$defs/Node"}}}  # fmt: skip
    converted = to_gemini_schema(schema)
    assert converted is not None and check_schema(converted, "parameters") is None
    assert "head" in converted["properties"]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_events_split_at_any_byte(size: int) -> None:
    events = [{"n": 1, "text": "héllo"}, {"n": 2}, {"n": 3, "text": "a\\nb"}]
    body = b": comment\r\n" + b"".join(f"data: {json.dumps(e)}\r\n\r\n".encode() for e in events) + b'data: {"n": 4}'
    parser = SSEParser()
    got = [json.loads(d) for i in range(0, len(body), size) for d in parser.feed(body[i : i + size])]
    got += [json.loads(d) for d in parser.close()]
    assert [e["n"] for e in got] == [1, 2, 3, 4] and got[0]["text"] == "héllo"
