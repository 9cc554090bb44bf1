"""Rendering a conversation into the two wire formats most LLM providers speak.

:func:`to_openai` gives OpenAI Chat Completions ``messages``;
:func:`to_anthropic` gives Anthropic Messages ``(system, messages)``.
:meth:`ChatContext.to_openai <vocalis.chat.ChatContext.to_openai>` and
:meth:`~vocalis.chat.ChatContext.to_anthropic` call them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from vocalis.chat.items import _INSTRUCTION_ROLES, ChatItem, ChatMessage, ChatRole, FunctionCall

JSONObject = dict[str, object]
"""A JSON object as Python builds it (``json.loads`` of an object, a tool's schema)."""

ANTHROPIC_CONVERSATION_START = "(The conversation begins.)"
"""Placeholder user turn for Anthropic when the assistant would speak first.

Voice agents often greet the caller before the caller says anything, but the
Anthropic Messages API requires the first message to come from the user.
"""


def to_openai(items: Iterable[ChatItem], *, developer_role: str = "developer") -> list[JSONObject]:
    """Render ``items`` as OpenAI Chat Completions ``messages``.

    Consecutive function calls become one assistant message with
    ``tool_calls``; an assistant text message directly before them supplies
    its ``content``. Items are rendered faithfully: calls without outputs
    (or outputs without calls) are not repaired here.

    Args:
        items: The conversation, in order.
        developer_role: Role used for DEVELOPER messages; pass ``"system"``
            for servers that do not know the ``developer`` role.
    """
    out: list[dict[str, Any]] = []
    prev: ChatItem | None = None
    for it in items:
        if isinstance(it, ChatMessage):
            role = developer_role if it.role == ChatRole.DEVELOPER else it.role.value
            out.append({"role": role, "content": it.content})
        elif isinstance(it, FunctionCall):
            tool_call = {
                "id": it.call_id,
                "type": "function",
                "function": {"name": it.name, "arguments": it.arguments},
            }
            # Attach to the assistant message just emitted if it is the
            # assistant's text or an earlier call of the same batch.
            joins = isinstance(prev, FunctionCall) or (
                isinstance(prev, ChatMessage) and prev.role == ChatRole.ASSISTANT
            )
            if joins:
                out[-1].setdefault("tool_calls", []).append(tool_call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [tool_call]})
        else:
            out.append({"role": "tool", "tool_call_id": it.call_id, "content": it.output})
        prev = it
    return out


def to_anthropic(items: Iterable[ChatItem]) -> tuple[str, list[JSONObject]]:
    """Render ``items`` as Anthropic Messages ``(system, messages)``.

    SYSTEM and DEVELOPER texts are joined with blank lines into ``system``.
    Consecutive same-role items merge into one message, since the API wants
    strictly alternating roles; within a user message ``tool_result`` blocks
    come first, as the API requires. Empty or whitespace-only text is
    skipped. If the first message would be the assistant's, or there is no
    message at all, a user message reading
    :data:`ANTHROPIC_CONVERSATION_START` is prepended. Tool arguments that
    are not a JSON object become ``{}`` rather than raising.

    Args:
        items: The conversation, in order.
    """
    system_parts: list[str] = []
    messages: list[dict[str, Any]] = []

    def add(role: str, block: dict[str, Any]) -> None:
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].append(block)
        else:
            messages.append({"role": role, "content": [block]})

    for it in items:
        if isinstance(it, ChatMessage):
            if not it.content.strip():
                continue
            if it.role in _INSTRUCTION_ROLES:
                system_parts.append(it.content)
            else:
                add(it.role.value, {"type": "text", "text": it.content})
        elif isinstance(it, FunctionCall):
            block = {"type": "tool_use", "id": it.call_id, "name": it.name}
            add("assistant", {**block, "input": _parse_arguments(it.arguments)})
        else:
            add(
                "user",
                {
                    "type": "tool_result",
                    "tool_use_id": it.call_id,
                    "content": it.output,
                    "is_error": it.is_error,
                },
            )
    for msg in messages:
        if msg["role"] == "user":
            # list.sort is stable, so results and texts keep their own order.
            msg["content"].sort(key=lambda b: b["type"] != "tool_result")
    if not messages or messages[0]["role"] != "user":
        start = {"type": "text", "text": ANTHROPIC_CONVERSATION_START}
        messages.insert(0, {"role": "user", "content": [start]})
    return "\n\n".join(system_parts), messages


def _parse_arguments(arguments: str) -> dict[str, Any]:
    # The LLM may emit broken JSON; the record must still render so the
    # conversation (and the tool's error output) can be sent back.
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except (ValueError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}
