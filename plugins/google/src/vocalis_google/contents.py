"""A Vocalis conversation as Gemini ``contents``, and tools as function declarations.

Gemini wants ``user`` and ``model`` turns taking turns, the first one the
user's; a model turn's ``functionCall`` parts answered by the very next user
turn's ``functionResponse`` parts, one for each. Instructions go apart, in
``systemInstruction``. A call the API issued carries the ``id`` it gave and,
on thinking models, the ``thoughtSignature`` it came with: both must go back
with the history, or Gemini 3 refuses it with a 400. :class:`CallMemory`
keeps them between requests.
"""

from __future__ import annotations

import base64
import json
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from vocalis.chat import ChatItem, ChatMessage, ChatRole, FunctionCall, FunctionCallOutput
from vocalis.chat.formats import JSONObject
from vocalis.providers.llm import ToolSpec
from vocalis_google.schema import to_gemini_schema

CONVERSATION_START = "(The conversation begins.)"
"""Placeholder user turn when the model would speak first (a greeting):
Gemini wants the first turn to be the user's."""

SKIP_SIGNATURE = base64.b64encode(b"skip_thought_signature_validator").decode()
"""The signature Google documents for a call that has none of its own (a
history from another model, or older than this process)."""

_INSTRUCTIONS = frozenset({ChatRole.SYSTEM, ChatRole.DEVELOPER})
_REMEMBERED = 512  # calls whose id and signature are kept


class CallMemory:
    """What the API said about the calls it made: their ids and signatures.

    Bounded: the oldest calls are forgotten first (a long session only ever
    sends back its recent history's signatures).
    """

    def __init__(self) -> None:
        self._calls: OrderedDict[str, tuple[bool, str | None]] = OrderedDict()

    def remember(self, call_id: str, *, issued: bool, signature: str | None) -> None:
        """Record a call: whether the API gave its id, and its thought signature."""
        self._calls[call_id] = (issued, signature)
        self._calls.move_to_end(call_id)
        while len(self._calls) > _REMEMBERED:
            self._calls.popitem(last=False)

    def known(self, call_id: str) -> bool:
        """Whether the API made this call (through this provider, recently)."""
        return call_id in self._calls

    def issued(self, call_id: str) -> bool:
        """Whether the API issued this id (only such ids go back to it)."""
        return self._calls.get(call_id, (False, None))[0]

    def signature(self, call_id: str) -> str | None:
        """The call's thought signature, if it came with one."""
        return self._calls.get(call_id, (False, None))[1]


def function_response(output: str, *, is_error: bool = False) -> JSONObject:
    """A tool's output as a ``functionResponse.response`` object.

    The API reads ``output`` as the result and ``error`` as a failure; output
    that is JSON goes as JSON, so the model sees its structure.
    """
    if is_error:
        return {"error": output}
    try:
        value = json.loads(output)
    except (ValueError, TypeError):
        return {"output": output}
    return {"output": value if isinstance(value, dict | list) else output}


def parse_arguments(arguments: str) -> JSONObject:
    """A call's arguments as an object; broken JSON (the model's) becomes ``{}``."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except (ValueError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def to_contents(
    items: Iterable[ChatItem], *, memory: CallMemory | None = None, signature_fallback: bool = True
) -> tuple[str, list[JSONObject]]:
    """Render a conversation as ``(system instruction text, contents)``.

    Args:
        items: The conversation, in order.
        memory: Ids and signatures of the calls the API made.
        signature_fallback: Give a model turn's first call
            :data:`SKIP_SIGNATURE` when it has no signature of its own.
    """
    memory = memory or CallMemory()
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    foreign: set[int] = set()  # call parts the API never saw made (another model's)

    def add(role: str, part: dict[str, Any]) -> None:
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].append(part)
        else:
            contents.append({"role": role, "parts": [part]})

    for item in items:
        if isinstance(item, ChatMessage):
            if not item.content.strip():
                continue
            if item.role in _INSTRUCTIONS:
                system.append(item.content)
            else:
                add("model" if item.role is ChatRole.ASSISTANT else "user", {"text": item.content})
        elif isinstance(item, FunctionCall):
            call: dict[str, Any] = {"name": item.name, "args": parse_arguments(item.arguments)}
            if memory.issued(item.call_id):
                call["id"] = item.call_id
            part: dict[str, Any] = {"functionCall": call}
            if signature := memory.signature(item.call_id):
                part["thoughtSignature"] = signature
            elif not memory.known(item.call_id):
                foreign.add(id(part))
            add("model", part)
        elif isinstance(item, FunctionCallOutput):
            response: dict[str, Any] = {
                "name": item.name,
                "response": function_response(item.output, is_error=item.is_error),
            }
            if memory.issued(item.call_id):
                response["id"] = item.call_id
            add("user", {"functionResponse": response})
    for content in contents:
        if content["role"] == "user":
            # Responses first, each batch right after its calls (a stable sort).
            content["parts"].sort(key=lambda p: "functionResponse" not in p)
        elif signature_fallback:
            _sign_first_call(content["parts"], foreign)
    if not contents or contents[0]["role"] != "user":
        contents.insert(0, {"role": "user", "parts": [{"text": CONVERSATION_START}]})
    return "\n\n".join(system), contents


def _sign_first_call(parts: list[dict[str, Any]], foreign: set[int]) -> None:
    # A call the API made unsigned needs none (a model that does not think);
    # one from elsewhere may need one, and only the first of a turn's calls.
    calls = [p for p in parts if "functionCall" in p]
    if calls and id(calls[0]) in foreign and not any("thoughtSignature" in p for p in calls):
        calls[0]["thoughtSignature"] = SKIP_SIGNATURE


def history_turns(items: Iterable[ChatItem]) -> list[JSONObject]:
    """A conversation as Live API ``clientContent`` turns (prefilled context).

    A Live session knows nothing of calls made on another connection, so
    calls and their results are told in words in model turns; instructions
    are the session's own (``systemInstruction``) and are left out.
    """
    turns: list[dict[str, Any]] = []
    calls: dict[str, FunctionCall] = {}

    def add(role: str, text: str) -> None:
        if turns and turns[-1]["role"] == role:
            turns[-1]["parts"].append({"text": text})
        else:
            turns.append({"role": role, "parts": [{"text": text}]})

    for item in items:
        if isinstance(item, ChatMessage):
            if item.content.strip() and item.role not in _INSTRUCTIONS:
                add("model" if item.role is ChatRole.ASSISTANT else "user", item.content)
        elif isinstance(item, FunctionCall):
            calls[item.call_id] = item
        else:
            call = calls.pop(item.call_id, None)
            arguments = call.arguments if call is not None else "{}"
            outcome = "failed with" if item.is_error else "returned"
            add("model", f"(I called {item.name} with {arguments}; it {outcome}: {item.output})")
    return turns


def function_declarations(tools: Sequence[ToolSpec]) -> list[JSONObject]:
    """The tools as ``functionDeclarations`` (a tool without parameters declares none)."""
    declarations: list[dict[str, Any]] = []
    for tool in tools:
        declaration: dict[str, Any] = {"name": tool.name, "description": tool.description or ""}
        parameters = to_gemini_schema(tool.parameters or {})
        if parameters is not None:
            declaration["parameters"] = parameters
        declarations.append(declaration)
    return declarations
