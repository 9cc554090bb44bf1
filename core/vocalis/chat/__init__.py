"""The conversation record: messages, tool calls and tool results.

A :class:`ChatContext` is an ordered list of items. It is provider-neutral;
:meth:`ChatContext.to_openai` and :meth:`ChatContext.to_anthropic` render it
into the two wire formats that most LLM providers speak.

The package is split by job: :mod:`.items` (messages, calls, outputs),
:mod:`.context` (:class:`ChatContext`), :mod:`.formats` (the provider wire
formats) and :mod:`.validation` (:func:`request_problems`). Every name is
importable from ``vocalis.chat``.
"""

from vocalis.chat.context import PENDING_TOOL_OUTPUT, ChatContext
from vocalis.chat.formats import ANTHROPIC_CONVERSATION_START, to_anthropic, to_openai
from vocalis.chat.items import ChatItem, ChatMessage, ChatRole, FunctionCall, FunctionCallOutput
from vocalis.chat.items import _is_instruction as _is_instruction  # for vocalis.session.limits
from vocalis.chat.validation import request_problems

__all__ = [
    "ANTHROPIC_CONVERSATION_START",
    "PENDING_TOOL_OUTPUT",
    "ChatContext",
    "ChatItem",
    "ChatMessage",
    "ChatRole",
    "FunctionCall",
    "FunctionCallOutput",
    "request_problems",
    "to_anthropic",
    "to_openai",
]
