"""Checking a request as OpenAI and Anthropic would, before it is sent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vocalis.chat.items import FunctionCall, FunctionCallOutput

if TYPE_CHECKING:
    from vocalis.chat.context import ChatContext


def request_problems(chat_ctx: ChatContext) -> list[str]:
    """Why OpenAI or Anthropic would reject ``chat_ctx`` as a request ([] if valid).

    Every function call must have exactly one output, after the call and
    before any later text message; no output may lack its call; call ids are
    unique.
    """
    problems: list[str] = []
    open_calls: dict[str, str] = {}  # call id -> name, awaiting output in this batch
    seen_calls: set[str] = set()
    answered: set[str] = set()
    for position, it in enumerate(chat_ctx.items):
        if isinstance(it, FunctionCall):
            if it.call_id in seen_calls:
                problems.append(f"item {position}: call id {it.call_id!r} is used twice")
            seen_calls.add(it.call_id)
            open_calls[it.call_id] = it.name
        elif isinstance(it, FunctionCallOutput):
            if it.call_id not in seen_calls:
                problems.append(f"item {position}: output for {it.call_id!r} has no call before it")
            elif it.call_id in answered:
                problems.append(f"item {position}: a second output for call {it.call_id!r}")
            answered.add(it.call_id)
            open_calls.pop(it.call_id, None)
        elif open_calls:
            names = ", ".join(f"{name} ({cid})" for cid, name in open_calls.items())
            problems.append(f"item {position}: a {it.role.value} message before the output of {names}")
            open_calls.clear()
    if open_calls:
        names = ", ".join(f"{name} ({cid})" for cid, name in open_calls.items())
        problems.append(f"the request ends before the output of {names}")
    return problems
