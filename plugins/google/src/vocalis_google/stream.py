"""``streamGenerateContent?alt=sse`` replies as :class:`ChatChunk`s.

With ``alt=sse`` the body is server-sent events whose ``data`` is each a
whole ``GenerateContentResponse``::

    data: {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}],
           "usageMetadata": {...}, "modelVersion": "...", "responseId": "..."}

There is no end marker: the reply is complete when a candidate has a
``finishReason`` and the body ends. Text parts are passed on at once
(thought summaries are not); a ``functionCall`` part always arrives whole,
arguments parsed, so each call is emitted as soon as its part comes.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from loguru import logger

from vocalis.chat.formats import JSONObject
from vocalis.providers.llm import ChatChunk, ToolCallRequest, Usage
from vocalis_google.contents import CallMemory

# Finish reasons after which a reply with words in it is what it is (logged);
# one that said nothing is a failure (raised), so a fallback may take over.
_TRUNCATED = frozenset({"MAX_TOKENS"})
_BLOCKED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE", "OTHER"}
)
# The model botched its output: asking again (or another model) may work.
_MALFORMED = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS", "MALFORMED_RESPONSE"})


class PromptBlocked(Exception):
    """The API refused the prompt itself (``promptFeedback.blockReason``)."""


class SSEParser:
    """Splits a byte stream into the ``data`` of each server-sent event."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        """Take the next bytes; return the data of the events they complete."""
        self._buffer += chunk
        events: list[str] = []
        while True:
            end = _line_end(self._buffer)
            if end is None:
                return events
            line, self._buffer = self._buffer[: end[0]], self._buffer[end[1] :]
            if not line:
                if self._data:
                    events.append("\n".join(self._data))
                    self._data = []
                continue
            text = line.decode("utf-8")
            name, _, value = text.partition(":")
            if name == "data":
                self._data.append(value.removeprefix(" "))
            # Comments (":"), event names, ids and retries carry nothing here.

    def close(self) -> list[str]:
        """The data of an event the body ended without a blank line after."""
        tail = self.feed(b"\n\n") if self._buffer or self._data else []
        return tail


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    """``(end of the line, start of the next)`` for the first line break in ``buffer``."""
    cr, lf = buffer.find(b"\r"), buffer.find(b"\n")
    if cr == -1 and lf == -1:
        return None
    if cr != -1 and (lf == -1 or cr < lf):
        if cr + 1 == len(buffer):
            return None  # a lone CR at the end may be the start of CRLF
        return (cr, cr + 2) if buffer[cr + 1 : cr + 2] == b"\n" else (cr, cr + 1)
    return lf, lf + 1


class StreamAssembler:
    """Feeds on ``GenerateContentResponse`` objects; gives the chunks to yield.

    Args:
        memory: Where each call's id and thought signature are recorded, to go
            back with the history on the next request.

    Attributes:
        finish_reason: The candidate's ``finishReason`` once one came.
    """

    def __init__(self, memory: CallMemory) -> None:
        self._memory = memory
        self.finish_reason: str | None = None
        self.produced = False  # text or a call was given out
        self._prompt_tokens = 0
        self._completion_tokens = 0

    @property
    def finished(self) -> bool:
        """Whether a finish reason came: the reply is complete."""
        return self.finish_reason is not None

    @property
    def failure(self) -> tuple[str, bool] | None:
        """``(finish reason, whether a retry may help)`` of a reply that ended
        saying nothing because it was blocked or malformed; else None."""
        reason = self.finish_reason
        if self.produced or reason is None or reason not in _BLOCKED | _MALFORMED:
            return None
        return reason, reason in _MALFORMED or reason == "OTHER"

    @property
    def usage(self) -> Usage:
        """Token counts reported so far (the latest report is cumulative)."""
        return Usage(prompt_tokens=self._prompt_tokens, completion_tokens=self._completion_tokens)

    def feed(self, response: JSONObject) -> ChatChunk | None:
        """Take one response object; return a chunk to yield, if it holds one.

        Raises:
            PromptBlocked: The prompt was refused.
        """
        feedback = response.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            raise PromptBlocked(str(feedback["blockReason"]))
        self._count(response.get("usageMetadata"))
        candidates = response.get("candidates")
        if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
            return None
        candidate = candidates[0]
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        text: list[str] = []
        calls: list[ToolCallRequest] = []
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str) and part["text"] and not part.get("thought"):
                text.append(part["text"])  # (Gemini 3 may end on an empty part carrying a signature)
            call = part.get("functionCall")
            if isinstance(call, dict) and call.get("name"):
                calls.append(self._call(call, part.get("thoughtSignature")))
        if reason := candidate.get("finishReason"):
            self._finish(str(reason))
        if text or calls:
            self.produced = True
            return ChatChunk(text="".join(text), tool_calls=calls)
        return None

    def _call(self, call: dict[str, Any], signature: object) -> ToolCallRequest:
        issued = call.get("id")
        call_id = str(issued) if issued else f"call_{uuid.uuid4().hex[:20]}"
        self._memory.remember(call_id, issued=bool(issued), signature=signature if isinstance(signature, str) else None)
        args = call.get("args")
        return ToolCallRequest(call_id, str(call["name"]), json.dumps(args if isinstance(args, dict) else {}))

    def _finish(self, reason: str) -> None:
        self.finish_reason = reason
        if reason in _TRUNCATED:
            logger.warning("the reply was cut off at max_output_tokens")
        elif reason in _BLOCKED | _MALFORMED:
            logger.warning("the reply was stopped: {}", reason)
        elif reason not in ("STOP", "FINISH_REASON_UNSPECIFIED"):
            logger.warning("the reply ended with {}", reason)

    def _count(self, usage: object) -> None:
        if not isinstance(usage, dict):
            return
        prompt = usage.get("promptTokenCount")
        if isinstance(prompt, int):
            self._prompt_tokens = prompt
        # Thinking is billed as output: it counts toward the completion.
        output = [usage.get(key) for key in ("candidatesTokenCount", "thoughtsTokenCount")]
        if any(isinstance(value, int) for value in output):
            self._completion_tokens = sum(value for value in output if isinstance(value, int))
