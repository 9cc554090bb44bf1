"""The conversation record and its OpenAI / Anthropic renderings."""

from __future__ import annotations

import pytest

from vocalis.chat import (
    ANTHROPIC_CONVERSATION_START,
    ChatContext,
    ChatMessage,
    ChatRole,
    FunctionCall,
    FunctionCallOutput,
)


def _tool_ctx() -> ChatContext:
    """A short exchange with two parallel tool calls."""
    ctx = ChatContext()
    ctx.add_message("system", "Be brief.")
    ctx.add_message("user", "Weather in Paris and Rome?")
    ctx.add_message("assistant", "Let me check.")
    ctx.add_function_call("c1", "weather", '{"city": "Paris"}')
    ctx.add_function_call("c2", "weather", '{"city": "Rome"}')
    ctx.add_function_output("c1", "weather", "sunny")
    ctx.add_function_output("c2", "weather", "rain", is_error=True)
    ctx.add_message("assistant", "Sunny in Paris; Rome failed.")
    return ctx


def _texts(*texts: str) -> list[dict[str, str]]:
    return [{"type": "text", "text": t} for t in texts]


# -- items -------------------------------------------------------------------


def test_items_get_prefixed_unique_ids() -> None:
    msgs = [ChatMessage(ChatRole.USER, "hi") for _ in range(50)]
    assert len({m.id for m in msgs}) == 50
    assert msgs[0].id.startswith("msg_")
    assert FunctionCall("c", "f", "{}").id.startswith("fc_")
    assert FunctionCallOutput("c", "f", "x").id.startswith("fco_")


def test_message_role_accepts_strings() -> None:
    msg = ChatMessage("user", "hi")  # type: ignore[arg-type]
    assert msg.role is ChatRole.USER
    assert msg.interrupted is False and msg.created_at == 0.0
    with pytest.raises(ValueError):
        ChatMessage("robot", "hi")  # type: ignore[arg-type]


def test_add_helpers_append_and_return_items() -> None:
    ctx = ChatContext()
    msg = ctx.add_message(ChatRole.ASSISTANT, "Hel", interrupted=True, created_at=1.5)
    call = ctx.add_function_call("c1", "f", "{}", created_at=2.0)
    out = ctx.add_function_output("c1", "f", "ok", is_error=True, created_at=3.0)
    assert ctx.items == [msg, call, out]
    assert list(ctx) == [msg, call, out] and len(ctx) == 3
    assert msg.interrupted and msg.created_at == 1.5
    assert (call.call_id, call.name, call.arguments, call.created_at) == ("c1", "f", "{}", 2.0)
    assert out.is_error and out.output == "ok" and out.created_at == 3.0
    with pytest.raises(ValueError):
        ctx.add_message("narrator", "x")


def test_append_rejects_non_items() -> None:
    ctx = ChatContext()
    ctx.append(ChatMessage(ChatRole.USER, "hi"))
    with pytest.raises(TypeError):
        ctx.append({"role": "user", "content": "hi"})  # type: ignore[arg-type]
    assert len(ctx) == 1


def test_messages_and_last_message_filter_by_role() -> None:
    ctx = _tool_ctx()
    assert [m.content for m in ctx.messages("assistant")] == [
        "Let me check.",
        "Sunny in Paris; Rome failed.",
    ]
    assert len(ctx.messages()) == 4
    last, last_user = ctx.last_message(), ctx.last_message(ChatRole.USER)
    assert last is not None and last.content == "Sunny in Paris; Rome failed."
    assert last_user is not None and last_user.content == "Weather in Paris and Rome?"
    assert ctx.last_message("developer") is None
    assert ChatContext().last_message() is None


def test_init_takes_items() -> None:
    items = [ChatMessage(ChatRole.USER, "a"), ChatMessage(ChatRole.ASSISTANT, "b")]
    assert ChatContext(items).items == items
    assert ChatContext(iter(items)).items == items


# -- copy / instructions ---------------------------------------------------------


def test_copy_is_independent() -> None:
    ctx = _tool_ctx()
    dup = ctx.copy()
    assert [it.id for it in dup] == [it.id for it in ctx]
    assert all(a is not b for a, b in zip(dup, ctx, strict=True))
    dup.items[1].content = "changed"  # type: ignore[union-attr]
    dup.add_message("user", "more")
    assert ctx.items[1].content == "Weather in Paris and Rome?"  # type: ignore[union-attr]
    assert len(ctx) == 8 and len(dup) == 9


def test_copy_can_exclude_instructions_and_function_calls() -> None:
    ctx = _tool_ctx()
    ctx.add_message("developer", "dev note")
    no_instr = ctx.copy(exclude_instructions=True)
    assert all(
        not (isinstance(it, ChatMessage) and it.role in {ChatRole.SYSTEM, ChatRole.DEVELOPER}) for it in no_instr
    )
    assert len(no_instr) == 7
    no_calls = ctx.copy(exclude_function_calls=True)
    assert all(isinstance(it, ChatMessage) for it in no_calls)
    assert len(no_calls) == 5
    assert len(ctx.copy(exclude_instructions=True, exclude_function_calls=True)) == 3


def test_set_instructions_replaces_first_system_message() -> None:
    ctx = ChatContext()
    ctx.add_message("user", "hi")
    ctx.set_instructions("v1")
    assert ctx.items[0] == ChatMessage(ChatRole.SYSTEM, "v1", id=ctx.items[0].id)
    ctx.set_instructions("v2")
    assert [m.content for m in ctx.messages()] == ["v2", "hi"]

    later = ChatContext()
    later.add_message("user", "hi")
    later.add_message("system", "old")
    later.set_instructions("new")
    assert [m.content for m in later.messages()] == ["hi", "new"]


# -- truncate --------------------------------------------------------------------


def test_truncate_keeps_leading_instructions_and_newest_items() -> None:
    ctx = ChatContext()
    ctx.add_message("system", "sys")
    ctx.add_message("developer", "dev")
    for i in range(6):
        ctx.add_message("user" if i % 2 == 0 else "assistant", f"m{i}")
    ctx.truncate(3)
    assert [m.content for m in ctx.messages()] == ["sys", "dev", "m3", "m4", "m5"]
    ctx.truncate(10)  # fewer items than the limit: nothing changes
    assert len(ctx) == 5
    ctx.truncate(0)
    assert [m.content for m in ctx.messages()] == ["sys", "dev"]
    with pytest.raises(ValueError):
        ctx.truncate(-1)


def test_truncate_drops_outputs_whose_call_was_dropped() -> None:
    ctx = _tool_ctx()
    # Newest 4: call c2, output c1, output c2, final assistant message.
    ctx.truncate(4)
    kinds = [type(it).__name__ for it in ctx]
    assert kinds == ["ChatMessage", "FunctionCall", "FunctionCallOutput", "ChatMessage"]
    assert [it.call_id for it in ctx if not isinstance(it, ChatMessage)] == ["c2", "c2"]
    assert ctx.items[0].content == "Be brief."  # type: ignore[union-attr]


def test_truncate_counts_mid_conversation_system_messages() -> None:
    ctx = ChatContext()
    ctx.add_message("user", "a")
    ctx.add_message("system", "late note")
    ctx.add_message("user", "b")
    ctx.truncate(1)
    assert [m.content for m in ctx.messages()] == ["b"]


# -- OpenAI ----------------------------------------------------------------------


def test_to_openai_groups_calls_with_preceding_assistant_text() -> None:
    assert _tool_ctx().to_openai() == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "rain"},
        {"role": "assistant", "content": "Sunny in Paris; Rome failed."},
    ]


def test_to_openai_calls_without_assistant_text_get_null_content() -> None:
    ctx = ChatContext()
    ctx.add_message("user", "hi")
    ctx.add_function_call("c1", "a", "{}")
    ctx.add_function_call("c2", "b", "not json")  # passed through untouched
    ctx.add_function_output("c1", "a", "x")
    ctx.add_function_output("c2", "b", "y")
    ctx.add_function_call("c3", "a", "{}")  # a second round is its own message
    ctx.add_function_output("c3", "a", "z")
    out = ctx.to_openai()
    assert [m["role"] for m in out] == ["user", "assistant", "tool", "tool", "assistant", "tool"]
    assert out[1]["content"] is None
    assert [c["id"] for c in out[1]["tool_calls"]] == ["c1", "c2"]
    assert out[1]["tool_calls"][1]["function"]["arguments"] == "not json"
    assert out[4] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c3", "type": "function", "function": {"name": "a", "arguments": "{}"}}],
    }


def test_to_openai_does_not_attach_calls_to_an_earlier_assistant_message() -> None:
    ctx = ChatContext()
    ctx.add_message("assistant", "Hi!")
    ctx.add_message("user", "Book it")
    ctx.add_function_call("c1", "book", "{}")
    out = ctx.to_openai()
    assert out[0] == {"role": "assistant", "content": "Hi!"}
    assert out[2]["content"] is None and len(out[2]["tool_calls"]) == 1


def test_to_openai_developer_role_and_interrupted_text() -> None:
    ctx = ChatContext()
    ctx.add_message("developer", "dev")
    ctx.add_message("assistant", "I was say", interrupted=True)
    assert ctx.to_openai()[0] == {"role": "developer", "content": "dev"}
    assert ctx.to_openai(developer_role="system")[0] == {"role": "system", "content": "dev"}
    assert ctx.to_openai()[1] == {"role": "assistant", "content": "I was say"}


# -- Anthropic -------------------------------------------------------------------


def test_to_anthropic_renders_tool_use_and_results() -> None:
    ctx = _tool_ctx()
    ctx.add_message("developer", "Use metric units.")
    system, messages = ctx.to_anthropic()
    assert system == "Be brief.\n\nUse metric units."
    assert messages == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "c2", "name": "weather", "input": {"city": "Rome"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "c1", "content": "sunny", "is_error": False},
                {"type": "tool_result", "tool_use_id": "c2", "content": "rain", "is_error": True},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Sunny in Paris; Rome failed."}],
        },
    ]


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]", '"text"', "", "null", "42"])
def test_to_anthropic_bad_arguments_become_empty_input(arguments: str) -> None:
    ctx = ChatContext()
    ctx.add_message("user", "go")
    ctx.add_function_call("c1", "f", arguments)
    _, messages = ctx.to_anthropic()
    assert messages[1]["content"] == [{"type": "tool_use", "id": "c1", "name": "f", "input": {}}]


def test_to_anthropic_merges_consecutive_roles_and_alternates() -> None:
    ctx = ChatContext()
    ctx.add_message("user", "one")
    ctx.add_message("user", "two")
    ctx.add_message("assistant", "a")
    ctx.add_message("assistant", "b")
    _, messages = ctx.to_anthropic()
    assert messages == [
        {"role": "user", "content": _texts("one", "two")},
        {"role": "assistant", "content": _texts("a", "b")},
    ]


def test_to_anthropic_puts_tool_results_before_text_in_user_message() -> None:
    ctx = ChatContext()
    ctx.add_message("user", "book it")
    ctx.add_function_call("c1", "book", "{}")
    ctx.add_message("user", "hurry up")  # spoken while the tool was running
    ctx.add_function_output("c1", "book", "done")
    _, messages = ctx.to_anthropic()
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["type"] for b in messages[2]["content"]] == ["tool_result", "text"]


def test_to_anthropic_starts_with_a_user_message() -> None:
    ctx = ChatContext()
    ctx.add_message("system", "sys")
    ctx.add_message("assistant", "Hello, how can I help?")
    system, messages = ctx.to_anthropic()
    assert system == "sys"
    assert messages[0] == {
        "role": "user",
        "content": [{"type": "text", "text": ANTHROPIC_CONVERSATION_START}],
    }
    assert messages[1]["role"] == "assistant"
    # An empty conversation is still a valid request.
    assert ChatContext().to_anthropic() == ("", [messages[0]])


def test_to_anthropic_skips_empty_text() -> None:
    ctx = ChatContext()
    ctx.add_message("system", "")
    ctx.add_message("user", "hi")
    ctx.add_message("assistant", "   ", interrupted=True)
    ctx.add_message("user", "")
    ctx.add_message("assistant", "Sor", interrupted=True)
    system, messages = ctx.to_anthropic()
    assert system == ""
    assert messages == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Sor"}]},
    ]
    for message in messages:
        assert all(b.get("text", "x").strip() for b in message["content"])
