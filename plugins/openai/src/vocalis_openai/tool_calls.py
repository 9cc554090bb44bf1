"""Reassemble streamed tool calls from Chat Completions deltas.

Servers disagree on how they stream calls. OpenAI sends the id and name in
the first delta of each ``index`` and the arguments in pieces after it;
Ollama sends each call whole in one delta, and older versions give every
call index 0; some servers omit ``index`` altogether. The assembler accepts
all of these.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.providers.llm import ToolCallRequest

if TYPE_CHECKING:
    from vocalis.providers.base import Provider


@dataclass(slots=True)
class _PartialCall:
    index: int | None
    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ToolCallAssembler:
    """Collects tool-call deltas of one streamed reply.

    Args:
        provider: Named in the log when a call has to be dropped.
    """

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self._calls: list[_PartialCall] = []

    def add(self, delta: Any) -> None:
        """Add one ``choices[0].delta.tool_calls[i]`` item."""
        function = getattr(delta, "function", None)
        call_id = getattr(delta, "id", None) or ""
        name = (getattr(function, "name", None) or "") if function is not None else ""
        arguments = getattr(function, "arguments", None) if function is not None else None
        call = self._target(getattr(delta, "index", None), call_id, name)
        if call_id and not call.call_id:
            call.call_id = call_id
        if name and not call.name:
            call.name = name
        if arguments:
            call.arguments.append(arguments if isinstance(arguments, str) else _dump(arguments))

    def _target(self, index: int | None, call_id: str, name: str) -> _PartialCall:
        last = self._calls[-1] if self._calls else None
        if index is not None:
            for call in reversed(self._calls):
                if call.index == index:
                    # A new id (with a name) at a used index is a new call:
                    # servers that number every call 0.
                    if call_id and call.call_id and call_id != call.call_id:
                        break
                    return call
        elif last is not None and not (call_id and last.call_id and call_id != last.call_id):
            if not (name and last.name):
                return last
        call = _PartialCall(index=index)
        self._calls.append(call)
        return call

    def finish(self) -> list[ToolCallRequest]:
        """The complete calls, in the order they started."""
        out: list[ToolCallRequest] = []
        for call in self._calls:
            if not call.name:
                logger.error(
                    "{}: dropped a tool call without a function name (arguments {!r})",
                    self._provider.label,
                    "".join(call.arguments)[:200],
                )
                continue
            arguments = "".join(call.arguments).strip() or "{}"
            call_id = call.call_id or f"call_{secrets.token_hex(8)}"
            out.append(ToolCallRequest(call_id=call_id, name=call.name, arguments=arguments))
        self._calls.clear()
        return out


def _dump(value: Any) -> str:
    import json

    # Some servers send the arguments as a JSON object instead of its text.
    return json.dumps(value, ensure_ascii=False)
