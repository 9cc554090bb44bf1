"""Vocalis chat history and tools as Realtime API conversation items and tool definitions."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from vocalis.chat import ChatMessage, ChatRole, FunctionCall, FunctionCallOutput
from vocalis.providers.llm import ToolSpec

if TYPE_CHECKING:
    from vocalis.chat import ChatContext

_INSTRUCTION_ROLES = frozenset({ChatRole.SYSTEM, ChatRole.DEVELOPER})


def tool_definition(tool: ToolSpec) -> dict[str, Any]:
    """A function tool as the session's ``tools`` list takes it."""
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description or "",
        "parameters": tool.parameters or {"type": "object", "properties": {}},
    }


def message_item(role: str, text: str) -> dict[str, Any]:
    """A text message item; assistants write ``output_text``, others ``input_text``."""
    part = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": part, "text": text}]}


def tool_output_item(call_id: str, output: str, *, is_error: bool = False) -> dict[str, Any]:
    """A ``function_call_output`` item answering ``call_id``.

    The protocol has no error flag, so a failure is sent as ``{"error": ...}``
    JSON, which models read reliably as one.
    """
    text = json.dumps({"error": output}) if is_error else output
    return {"type": "function_call_output", "call_id": call_id, "output": text}


def history_items(chat_ctx: ChatContext | None, instructions: str) -> list[dict[str, Any]]:
    """The conversation so far as items to replay with ``conversation.item.create``.

    Instruction messages repeating the session's instructions are skipped (the
    session already has them); other system and developer messages become
    system items. Empty messages are dropped; calls and outputs are kept as
    they are, since the server matches them by ``call_id``.
    """
    if chat_ctx is None:
        return []
    items: list[dict[str, Any]] = []
    for entry in chat_ctx:
        if isinstance(entry, ChatMessage):
            if not entry.content.strip():
                continue
            if entry.role in _INSTRUCTION_ROLES:
                if entry.content.strip() == instructions.strip():
                    continue
                items.append(message_item("system", entry.content))
            else:
                items.append(message_item(entry.role.value, entry.content))
        elif isinstance(entry, FunctionCall):
            items.append(
                {
                    "type": "function_call",
                    "call_id": entry.call_id,
                    "name": entry.name,
                    "arguments": entry.arguments,
                }
            )
        elif isinstance(entry, FunctionCallOutput):
            items.append(tool_output_item(entry.call_id, entry.output, is_error=entry.is_error))
    return items
