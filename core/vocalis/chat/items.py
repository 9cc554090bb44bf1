"""The items of a conversation: text messages, tool calls and tool results."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["ChatItem", "ChatMessage", "ChatRole", "FunctionCall", "FunctionCallOutput"]


class ChatRole(StrEnum):
    """Who authored a :class:`ChatMessage`."""

    SYSTEM = "system"
    DEVELOPER = "developer"
    USER = "user"
    ASSISTANT = "assistant"


_INSTRUCTION_ROLES = frozenset({ChatRole.SYSTEM, ChatRole.DEVELOPER})


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@dataclass(slots=True)
class ChatMessage:
    """A text message.

    Attributes:
        role: Who wrote it.
        content: The text.
        interrupted: True on an assistant message the user cut off; ``content``
            then holds only what was actually spoken.
        id: A short unique id.
        created_at: Creation time (seconds, caller-defined clock).
    """

    role: ChatRole
    content: str
    interrupted: bool = False
    id: str = field(default_factory=lambda: _new_id("msg"))
    created_at: float = 0.0

    def __post_init__(self) -> None:
        # Accept plain strings so callers can write ChatMessage("user", ...).
        self.role = ChatRole(self.role)


@dataclass(slots=True)
class FunctionCall:
    """A tool call requested by the LLM.

    Attributes:
        call_id: The provider's id for the call; links it to its output.
        name: The tool name.
        arguments: Raw JSON text exactly as the LLM produced it (may be malformed).
        id: A short unique id.
        created_at: Creation time.
    """

    call_id: str
    name: str
    arguments: str
    id: str = field(default_factory=lambda: _new_id("fc"))
    created_at: float = 0.0


@dataclass(slots=True)
class FunctionCallOutput:
    """The result of a tool call, as handed back to the LLM.

    Attributes:
        call_id: The ``call_id`` of the :class:`FunctionCall` it answers.
        name: The tool name.
        output: The result (or error message) as text.
        is_error: True if ``output`` describes a failure.
        id: A short unique id.
        created_at: Creation time.
    """

    call_id: str
    name: str
    output: str
    is_error: bool = False
    id: str = field(default_factory=lambda: _new_id("fco"))
    created_at: float = 0.0


ChatItem = ChatMessage | FunctionCall | FunctionCallOutput


def _is_instruction(item: ChatItem) -> bool:
    return isinstance(item, ChatMessage) and item.role in _INSTRUCTION_ROLES
