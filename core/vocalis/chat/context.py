"""The conversation record: :class:`ChatContext`, an ordered list of chat items."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

from vocalis.chat import formats
from vocalis.chat.formats import JSONObject
from vocalis.chat.items import ChatItem, ChatMessage, ChatRole, FunctionCall, FunctionCallOutput, _is_instruction

PENDING_TOOL_OUTPUT = "The tool is still running; its result is not available yet."
"""The output an LLM request carries for a call whose tool has not finished."""


class ChatContext:
    """An ordered conversation: messages, function calls and their outputs.

    Args:
        items: Initial items, kept as given (not copied).
    """

    def __init__(self, items: Iterable[ChatItem] | None = None) -> None:
        self.items: list[ChatItem] = list(items) if items is not None else []

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[ChatItem]:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"ChatContext({len(self.items)} items)"

    def append(self, item: ChatItem) -> None:
        """Append an item."""
        if not isinstance(item, ChatMessage | FunctionCall | FunctionCallOutput):
            raise TypeError(f"not a chat item: {item!r}")
        self.items.append(item)

    def add_message(
        self,
        role: ChatRole | str,
        content: str,
        *,
        interrupted: bool = False,
        created_at: float = 0.0,
    ) -> ChatMessage:
        """Append a text message and return it.

        Raises:
            ValueError: ``role`` is not a valid :class:`ChatRole`.
        """
        msg = ChatMessage(ChatRole(role), content, interrupted=interrupted, created_at=created_at)
        self.items.append(msg)
        return msg

    def add_function_call(self, call_id: str, name: str, arguments: str, *, created_at: float = 0.0) -> FunctionCall:
        """Append a function call and return it."""
        call = FunctionCall(call_id, name, arguments, created_at=created_at)
        self.items.append(call)
        return call

    def add_function_output(
        self,
        call_id: str,
        name: str,
        output: str,
        *,
        is_error: bool = False,
        created_at: float = 0.0,
    ) -> FunctionCallOutput:
        """Record a function call's output and return it.

        It goes right after its call's batch (the run of calls and outputs
        that follows the call), not necessarily at the end: a tool that
        finished after the user spoke again still answers its own call, as
        OpenAI and Anthropic require (each call's output comes before any
        later message). Without a matching call it is appended.
        """
        out = FunctionCallOutput(call_id, name, output, is_error=is_error, created_at=created_at)
        self.items.insert(self._after_batch_of(call_id), out)
        return out

    def _after_batch_of(self, call_id: str) -> int:
        """The index just past the call ``call_id`` and the calls and outputs after it."""
        index = next(
            (i for i, it in enumerate(self.items) if isinstance(it, FunctionCall) and it.call_id == call_id),
            None,
        )
        if index is None:
            return len(self.items)
        index += 1
        while index < len(self.items) and isinstance(self.items[index], FunctionCall | FunctionCallOutput):
            index += 1
        return index

    def pending_calls(self) -> list[FunctionCall]:
        """Function calls that have no output yet (their tool still runs)."""
        answered = {it.call_id for it in self.items if isinstance(it, FunctionCallOutput)}
        return [it for it in self.items if isinstance(it, FunctionCall) and it.call_id not in answered]

    def for_request(self) -> ChatContext:
        """This context as an LLM request may carry it.

        A call whose tool still runs gets a placeholder output
        (:data:`PENDING_TOOL_OUTPUT`) right after its batch, in a copy: every
        call then has exactly one output before any later message, which
        OpenAI and Anthropic require. The real output is recorded once, in
        this context, when the tool finishes. Returns ``self`` when no call
        is pending.
        """
        pending = self.pending_calls()
        if not pending:
            return self
        request = self.copy()
        for call in pending:
            placeholder = FunctionCallOutput(call.call_id, call.name, PENDING_TOOL_OUTPUT)
            request.items.insert(request._after_batch_of(call.call_id), placeholder)
        return request

    def messages(self, role: ChatRole | str | None = None) -> list[ChatMessage]:
        """The text messages, optionally only those of one role, in order."""
        wanted = ChatRole(role) if role is not None else None
        return [it for it in self.items if isinstance(it, ChatMessage) and (wanted is None or it.role == wanted)]

    def last_message(self, role: ChatRole | str | None = None) -> ChatMessage | None:
        """The newest text message (of ``role``, if given), or None."""
        msgs = self.messages(role)
        return msgs[-1] if msgs else None

    def copy(self, *, exclude_instructions: bool = False, exclude_function_calls: bool = False) -> ChatContext:
        """A copy whose items can be mutated without touching this context.

        Args:
            exclude_instructions: Drop SYSTEM and DEVELOPER messages.
            exclude_function_calls: Drop function calls and their outputs.
        """
        kept: list[ChatItem] = []
        for it in self.items:
            if exclude_instructions and _is_instruction(it):
                continue
            if exclude_function_calls and isinstance(it, FunctionCall | FunctionCallOutput):
                continue
            kept.append(dataclasses.replace(it))
        return ChatContext(kept)

    def set_instructions(self, text: str) -> None:
        """Replace the first SYSTEM message's text, or insert one at the start."""
        for it in self.items:
            if isinstance(it, ChatMessage) and it.role == ChatRole.SYSTEM:
                it.content = text
                return
        self.items.insert(0, ChatMessage(ChatRole.SYSTEM, text))

    def truncate(self, max_items: int) -> None:
        """Keep the leading instructions plus the newest ``max_items`` other items.

        The run of SYSTEM/DEVELOPER messages at the start is always kept and
        does not count towards ``max_items``. A function output whose call was
        dropped is dropped too, since providers reject a result for a call they
        never saw; the context may therefore end up shorter than the limit.

        Raises:
            ValueError: ``max_items`` is negative.
        """
        if max_items < 0:
            raise ValueError(f"max_items must be >= 0, got {max_items}")
        n_head = 0
        while n_head < len(self.items) and _is_instruction(self.items[n_head]):
            n_head += 1
        head, rest = self.items[:n_head], self.items[n_head:]
        tail = rest[-max_items:] if max_items else []
        calls = {it.call_id for it in tail if isinstance(it, FunctionCall)}
        self.items = head + [it for it in tail if not isinstance(it, FunctionCallOutput) or it.call_id in calls]

    def to_openai(self, *, developer_role: str = "developer") -> list[JSONObject]:
        """Render as OpenAI Chat Completions ``messages``.

        Consecutive function calls become one assistant message with
        ``tool_calls``; an assistant text message directly before them supplies
        its ``content``. Items are rendered faithfully: calls without outputs
        (or outputs without calls) are not repaired here.

        Args:
            developer_role: Role used for DEVELOPER messages; pass ``"system"``
                for servers that do not know the ``developer`` role.
        """
        return formats.to_openai(self.items, developer_role=developer_role)

    def to_anthropic(self) -> tuple[str, list[JSONObject]]:
        """Render as Anthropic Messages ``(system, messages)``.

        SYSTEM and DEVELOPER texts are joined with blank lines into ``system``.
        Consecutive same-role items merge into one message, since the API wants
        strictly alternating roles; within a user message ``tool_result`` blocks
        come first, as the API requires. Empty or whitespace-only text is
        skipped. If the first message would be the assistant's, or there is no
        message at all, a user message reading
        :data:`ANTHROPIC_CONVERSATION_START` is prepended. Tool arguments that
        are not a JSON object become ``{}`` rather than raising.
        """
        return formats.to_anthropic(self.items)
