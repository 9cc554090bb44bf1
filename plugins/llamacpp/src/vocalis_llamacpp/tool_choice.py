"""Tool calls from small models: decide, then fill, each under a grammar.

Small local models rarely write a well-formed tool call on their own, and
llama.cpp does not force one when a request carries ``tools``: the model may
write the call as plain JSON text, which would then be read aloud. So when a
reply may call a tool, two short greedy requests run first, each constrained
by a grammar (llguidance, built into llama.cpp) so that the model can only
answer in the expected form:

1. **Decide**: the answer is one of the tool names or ``none``, given the
   tools' descriptions and the conversation's last user turn.
2. **Confirm**: asked about that one tool alone, the answer is ``yes`` or
   ``no`` (small models over-pick from a list; a "no" asks each other tool).
3. **Fill**: for the chosen tool, a JSON object that matches its parameter
   schema exactly (names, types, required keys).

Both outputs are always valid; whether they are *right* is up to the model.
A turn whose last message is a tool's result is answered in text: one tool
round per user turn keeps a small model from calling the same tool again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from vocalis.chat import ChatMessage, ChatRole
from vocalis.providers.llm import ToolCallRequest, ToolSpec

if TYPE_CHECKING:
    from vocalis.chat import ChatContext

NONE = "none"
WORDS_ONLY = "%llguidance {}\nstart: /[^{<`\\s\\[][^\\x00]*/\n"
"""A grammar for a spoken answer: anything that does not start like JSON, a tag or code."""
_COMPACT = {"whitespace_flexible": False, "key_separator": ": ", "item_separator": ", "}
_HISTORY_MESSAGES = 4  # conversation turns shown to the decide step (the last one is the user's)

_DECIDE_PROMPT = """You choose whether a voice assistant must call a tool to answer the user's last message.
Tools:
{tools}
Answer with the name of the one tool that gives the information or does the work the user asks for.
Answer "none" for greetings, thanks, small talk, opinions, stories and any question the tools cannot answer."""

# Examples that fit any set of tools: what needs no tool. (Examples of tool
# requests would have to be written for each tool; the confirm step stands in.)
_GENERIC_EXAMPLES = [
    ("Hello there!", NONE),
    ("Thanks, that's all.", NONE),
    ("Tell me a joke.", NONE),
    ("What is your name?", NONE),
]


Generate = Callable[[dict[str, Any]], str]
"""Runs one non-streamed request and returns its text."""


def needs_decision(chat_ctx: ChatContext, tools: Sequence[ToolSpec]) -> bool:
    """Whether this reply may start with a tool call: tools are offered and
    the user spoke last (after a tool's result, the model answers in words)."""
    if not tools or not chat_ctx.items:
        return False
    last = chat_ctx.items[-1]
    return isinstance(last, ChatMessage) and last.role is ChatRole.USER


def decide_request(chat_ctx: ChatContext, tools: Sequence[ToolSpec]) -> dict[str, Any]:
    """The request that picks a tool name or ``none``."""
    listing = "\n".join(f"- {tool.name}({_parameter_names(tool)}): {_one_line(tool.description)}" for tool in tools)
    messages: list[dict[str, str]] = [{"role": "system", "content": _DECIDE_PROMPT.format(tools=listing)}]
    for question, answer in _GENERIC_EXAMPLES:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    messages.append({"role": "user", "content": _recent_user_turn(chat_ctx)})
    names = " | ".join(json.dumps(name) for name in [NONE, *(tool.name for tool in tools)])
    return {
        "messages": messages,
        "max_tokens": 16,
        "temperature": 0.0,
        "grammar": f"%llguidance {{}}\nstart: {names}\n",
        "cache_prompt": True,
    }


def fill_request(chat_ctx: ChatContext, tool: ToolSpec) -> dict[str, Any]:
    """The request that writes ``tool``'s arguments as JSON matching its schema."""
    schema = _closed_schema(tool.parameters)
    system = (
        f"Fill in the arguments of the tool {tool.name} ({_one_line(tool.description)}) "
        "for the user's request. Reply with JSON only."
    )
    return {
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": _recent_user_turn(chat_ctx)}],
        "max_tokens": 120,
        "temperature": 0.0,
        "grammar": "%llguidance {}\nstart: %json " + json.dumps(schema) + "\n",
        "cache_prompt": True,
    }


_ASK_PROMPT = """You check whether a voice assistant must use a tool for the user's last message.
The tool: {name}({params}): {description}
Answer "yes" only if the user asks for exactly what this tool does; otherwise answer "no"."""


def ask_request(chat_ctx: ChatContext, tool: ToolSpec) -> dict[str, Any]:
    """The request that asks whether ``tool`` serves the user's last message."""
    system = _ASK_PROMPT.format(name=tool.name, params=_parameter_names(tool), description=_one_line(tool.description))
    return {
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": _recent_user_turn(chat_ctx)}],
        "max_tokens": 4,
        "temperature": 0.0,
        "grammar": '%llguidance {}\nstart: "yes" | "no"\n',
        "cache_prompt": True,
    }


def choose_tool(generate: Generate, chat_ctx: ChatContext, tools: Sequence[ToolSpec]) -> ToolCallRequest | None:
    """Decide and fill (blocking: call it on a worker thread).

    Returns:
        The tool call, or None when the reply needs no tool.
    """
    choice = generate(decide_request(chat_ctx, tools)).strip()
    tool = next((t for t in tools if t.name == choice), None)
    if tool is not None and generate(ask_request(chat_ctx, tool)).strip() != "yes":
        tool = next((t for t in tools if t is not tool and generate(ask_request(chat_ctx, t)).strip() == "yes"), None)
    if tool is None:
        return None
    arguments = generate(fill_request(chat_ctx, tool)).strip() or "{}"
    return ToolCallRequest(call_id=f"call_{uuid.uuid4().hex[:12]}", name=tool.name, arguments=arguments)


def _recent_user_turn(chat_ctx: ChatContext) -> str:
    """The user's last message, with the turns just before it for context."""
    said = [m for m in chat_ctx.items if isinstance(m, ChatMessage) and m.role in (ChatRole.USER, ChatRole.ASSISTANT)]
    recent = said[-_HISTORY_MESSAGES:]
    if len(recent) <= 1:
        return recent[-1].content if recent else ""
    lines = [f"{'User' if m.role is ChatRole.USER else 'Assistant'}: {m.content}" for m in recent[:-1]]
    return "Earlier:\n" + "\n".join(lines) + f"\n\nThe user's last message: {recent[-1].content}"


def _parameter_names(tool: ToolSpec) -> str:
    properties = tool.parameters.get("properties")
    return ", ".join(properties) if isinstance(properties, dict) else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _closed_schema(parameters: Mapping[str, object]) -> dict[str, Any]:
    """The tool's parameter schema, with no extra keys allowed and compact JSON."""
    schema: dict[str, Any] = {"type": "object", "properties": {}, **parameters}
    schema["additionalProperties"] = False
    schema["x-guidance"] = _COMPACT
    return schema
