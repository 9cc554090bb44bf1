"""Build the Messages API request: conversation, tools and tool choice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vocalis.chat import ChatContext, ChatMessage
from vocalis.providers.llm import ToolSpec

# The contract's choices and what the Messages API calls them; "required"
# becomes "any": the model must call one tool, but may pick which.
_TOOL_CHOICES: dict[str, dict[str, Any]] = {
    "auto": {"type": "auto"},
    "none": {"type": "none"},
    "required": {"type": "any"},
}


class RequestError(ValueError):
    """The request cannot be built from what the caller gave."""


def has_content(chat_ctx: ChatContext) -> bool:
    """Whether the conversation holds anything to send.

    Tool calls and outputs count; messages count unless blank, since
    :meth:`ChatContext.to_anthropic` skips blank text.
    """
    return any(not isinstance(item, ChatMessage) or item.content.strip() for item in chat_ctx.items)


def to_tool(tool: ToolSpec) -> dict[str, Any]:
    """One tool as the API describes it: ``{name, description, input_schema}``.

    The API requires ``input_schema`` to be an object schema; tools without
    parameters get an empty one.
    """
    schema = dict(tool.parameters or {})
    schema.setdefault("type", "object")
    if schema["type"] == "object":
        schema.setdefault("properties", {})
    spec: dict[str, Any] = {"name": tool.name, "input_schema": schema}
    if tool.description:
        spec["description"] = tool.description
    return spec


def to_tool_choice(tool_choice: str | None, tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """The API's ``tool_choice`` for the contract's ``"auto"``/``"none"``/``"required"``.

    A tool's name is accepted too and forces that tool.

    Raises:
        RequestError: Neither a known choice nor one of ``tools``.
    """
    choice = tool_choice or "auto"
    if choice in _TOOL_CHOICES:
        return dict(_TOOL_CHOICES[choice])
    if any(tool.name == choice for tool in tools):
        return {"type": "tool", "name": choice}
    raise RequestError(f"unknown tool_choice {tool_choice!r}: use 'auto', 'none', 'required' or a tool's name")


def build_request(
    chat_ctx: ChatContext,
    *,
    model: str,
    max_tokens: int,
    temperature: float | None,
    tools: Sequence[ToolSpec],
    tool_choice: str | None,
) -> dict[str, Any]:
    """Keyword arguments for ``messages.create`` (without ``stream``).

    Raises:
        RequestError: The conversation is empty, or ``tool_choice`` is unknown.
    """
    if not has_content(chat_ctx):
        raise RequestError("the conversation is empty: give at least one message")
    system, messages = chat_ctx.to_anthropic()
    request: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
    if system:
        request["system"] = system
    if temperature is not None:
        # The 2.x SDK has no sampling arguments: the API rejects them on the
        # newest models, older ones (Haiku 4.5, Sonnet 4.x) still take them.
        request["extra_body"] = {"temperature": temperature}
    if tools:
        request["tools"] = [to_tool(tool) for tool in tools]
        request["tool_choice"] = to_tool_choice(tool_choice, tools)
    elif tool_choice not in (None, "auto", "none"):
        raise RequestError(f"tool_choice {tool_choice!r} needs tools, and none were given")
    return request
