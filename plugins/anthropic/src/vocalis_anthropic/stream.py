"""Assemble Messages API stream events into :class:`ChatChunk`s.

A stream runs ``message_start``, then per content block a
``content_block_start``, its ``content_block_delta``s and a
``content_block_stop``, then ``message_delta`` (stop reason, usage) and
``message_stop``. Text deltas are passed on at once; a ``tool_use`` block's
input arrives as partial JSON text (``input_json_delta``) that only makes
sense once the block stops, so the call is emitted then.

Events are read by their ``type`` string rather than their SDK class: the SDK
builds objects for event and delta types it does not know yet (thinking,
citations, server tools), and those are skipped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from vocalis.providers.llm import ChatChunk, ToolCallRequest, Usage


@dataclass(slots=True)
class _PendingCall:
    call_id: str
    name: str
    parts: list[str] = field(default_factory=list)


class StreamAssembler:
    """Feeds on stream events; gives the chunks to yield.

    Attributes:
        finished: ``message_stop`` was seen: the reply is complete.
        stop_reason: Why the model stopped (``end_turn``, ``tool_use``,
            ``max_tokens``, ...), once ``message_delta`` said so.
    """

    def __init__(self) -> None:
        self.finished = False
        self.stop_reason: str | None = None
        self._calls: dict[int, _PendingCall] = {}
        # Input counts are split three ways when prompt caching is on; the
        # prompt is all of them together.
        self._input = {
            "input_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        self._output_tokens = 0

    @property
    def usage(self) -> Usage:
        """Token counts reported so far (final once :attr:`finished`)."""
        return Usage(prompt_tokens=sum(self._input.values()), completion_tokens=self._output_tokens)

    def feed(self, event: Any) -> ChatChunk | None:
        """Take one event; return a chunk to yield, if it completes one."""
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            return self._delta(event)
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_stop":
            return self._block_stop(event)
        if kind == "message_start":
            message = getattr(event, "message", None)
            self._count(getattr(message, "usage", None))
        elif kind == "message_delta":
            self.stop_reason = getattr(getattr(event, "delta", None), "stop_reason", None) or self.stop_reason
            self._count(getattr(event, "usage", None))
        elif kind == "message_stop":
            self.finished = True
            if self.stop_reason == "max_tokens":
                logger.warning("the reply was cut off at max_tokens")
        return None

    def _count(self, usage: Any) -> None:
        # message_delta counts are cumulative, so the latest value wins; a
        # field it leaves out (None) keeps what message_start said.
        if usage is None:
            return
        for key in self._input:
            value = getattr(usage, key, None)
            if isinstance(value, int):
                self._input[key] = value
        output = getattr(usage, "output_tokens", None)
        if isinstance(output, int):
            self._output_tokens = output

    def _block_start(self, event: Any) -> ChatChunk | None:
        block = getattr(event, "content_block", None)
        block_type = getattr(block, "type", None)
        if block_type == "tool_use":
            call_id = getattr(block, "id", None) or f"toolu_{uuid.uuid4().hex[:24]}"
            self._calls[event.index] = _PendingCall(call_id, getattr(block, "name", None) or "")
        elif block_type == "text" and (text := getattr(block, "text", None)):
            return ChatChunk(text=text)
        return None

    def _delta(self, event: Any) -> ChatChunk | None:
        delta = getattr(event, "delta", None)
        delta_type = getattr(delta, "type", None)
        if delta_type == "text_delta":
            text = getattr(delta, "text", None)
            return ChatChunk(text=text) if text else None
        if delta_type == "input_json_delta":
            call = self._calls.get(event.index)
            partial = getattr(delta, "partial_json", None)
            if call is not None and partial:
                call.parts.append(partial)
        return None

    def _block_stop(self, event: Any) -> ChatChunk | None:
        call = self._calls.pop(getattr(event, "index", -1), None)
        if call is None:
            return None
        # The raw text, unparsed: if the model produced broken JSON the
        # session reports that back to it.
        arguments = "".join(call.parts).strip() or "{}"
        return ChatChunk(tool_calls=[ToolCallRequest(call.call_id, call.name, arguments)])
