"""Translating between Vocalis chat types and llama.cpp's OpenAI-format JSON.

Requests: the conversation becomes OpenAI ``messages``. When the model's chat
template cannot render tool calls (SmolLM2's cannot: it only knows ``role`` and
``content``), tool turns are rewritten as plain text so the model still sees
what was called and what came back (as a user turn: "Result of
name(args): output"), and consecutive same-role messages are merged for
templates that insist on alternating roles.

Responses: streamed chunks carry text deltas, tool-call fragments keyed by
index (name first, then pieces of the JSON arguments) and a final usage chunk.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vocalis.providers.llm import ToolCallRequest, ToolSpec, Usage

if TYPE_CHECKING:
    from vocalis.chat import ChatContext


def to_messages(chat_ctx: ChatContext, *, native_tool_calls: bool) -> list[dict[str, Any]]:
    """Render the conversation as OpenAI chat messages.

    Args:
        chat_ctx: The conversation.
        native_tool_calls: The template renders ``tool_calls`` and ``tool``
            messages itself; otherwise they become text.
    """
    # The values are read as the OpenAI message shape ``to_openai`` renders
    # (``tool_calls`` a list of call objects, ``role`` a string...).
    messages: list[dict[str, Any]] = chat_ctx.to_openai(developer_role="system")
    if native_tool_calls:
        return messages
    calls: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for msg in messages:
        if msg.get("tool_calls"):
            # The call itself is left out: small models parrot any notation
            # for it. Its result below names it, which is what they need.
            for call in msg["tool_calls"]:
                function = call["function"]
                calls[call["id"]] = f"{function['name']}({function['arguments']})"
            if not msg.get("content"):
                continue
            msg = {"role": "assistant", "content": msg["content"]}
        elif msg["role"] == "tool":
            described = calls.get(msg["tool_call_id"], "a tool call")
            msg = {"role": "user", "content": f"Result of {described}: {msg['content']}"}
        if out and out[-1]["role"] == msg["role"] and msg["role"] != "system":
            out[-1] = {"role": msg["role"], "content": f"{out[-1]['content']}\n\n{msg['content']}"}
        else:
            out.append(msg)
    return out


def to_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """Describe tools in the OpenAI ``tools`` format."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters or {"type": "object", "properties": {}},
            },
        }
        for tool in tools
    ]


def chunk_error(chunk: dict[str, Any]) -> tuple[str, int] | None:
    """The ``(message, code)`` of an error chunk, or None for a normal chunk.

    llama.cpp reports errors in two shapes: ``{"error": {...}}`` for a request
    it refuses (e.g. longer than the context) and a bare ``{"code",
    "message", "type"}`` when generation fails midway (e.g. output that does
    not match the tool-call format the template promised).
    """
    error = chunk.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error), int(error.get("code") or 500)
    if "choices" not in chunk and "message" in chunk:
        return str(chunk["message"]), int(chunk.get("code") or 500)
    return None


@dataclass(slots=True)
class _PartialCall:
    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class StreamState:
    """Folds streamed chunks into text deltas, finished tool calls and usage.

    Attributes:
        usage: Token counts, once the final chunk has reported them.
        finish_reason: Why generation ended (``stop``, ``length``,
            ``tool_calls``), once known.
    """

    usage: Usage | None = None
    finish_reason: str | None = None
    _calls: dict[int, _PartialCall] = field(default_factory=dict)

    def feed(self, chunk: dict[str, Any]) -> str:
        """Take one chunk; return the text it adds (maybe empty).

        Reasoning deltas (``reasoning_content`` of thinking models) are
        dropped: they are not meant to be spoken.
        """
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = Usage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            )
        text = ""
        for choice in chunk.get("choices") or ():
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            for fragment in delta.get("tool_calls") or ():
                self._add_fragment(fragment)
        return text

    def _add_fragment(self, fragment: dict[str, Any]) -> None:
        call = self._calls.setdefault(int(fragment.get("index") or 0), _PartialCall())
        call.call_id = fragment.get("id") or call.call_id
        function = fragment.get("function") or {}
        call.name += function.get("name") or ""
        arguments = function.get("arguments")
        # Some formats send arguments as an object rather than JSON text.
        if isinstance(arguments, dict):
            arguments = json.dumps(arguments)
        call.arguments.append(arguments or "")

    def tool_calls(self) -> list[ToolCallRequest]:
        """The tool calls requested so far, in index order.

        Arguments are passed on as the raw text the model produced, even if
        malformed; the session reports bad JSON back to the model.
        """
        return [
            ToolCallRequest(
                call_id=call.call_id or f"call_{uuid.uuid4().hex[:12]}",
                name=call.name,
                arguments="".join(call.arguments) or "{}",
            )
            for _, call in sorted(self._calls.items())
            if call.name
        ]
