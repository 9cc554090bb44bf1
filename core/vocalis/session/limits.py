"""Per-session resource limits, so a long or abusive conversation stays bounded.

A voice worker runs for days and holds many sessions; anything that grows with
every turn (the chat context, metrics, queued audio) or with a provider's or
a tool's whim (tool output, audio a slow client has not taken) needs a cap and
a defined behaviour at the cap. :class:`SessionLimits` gathers the caps an
:class:`~vocalis.session.AgentSession` applies; the transports and stream
adapters document their own next to their settings. See
``docs/reliability.md`` for the full table.
"""

from __future__ import annotations

from dataclasses import dataclass

from vocalis.chat import ChatContext, ChatItem, ChatMessage, ChatRole, FunctionCall, _is_instruction

__all__ = ["SessionLimits", "item_chars", "trim_chat_context"]


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """Caps on what one session may hold in memory.

    Attributes:
        max_context_items: Chat items (messages, tool calls, tool outputs)
            kept besides the leading instructions. ``None``: no limit.
        max_context_chars: Characters of those items kept (about four per
            token), so a few huge items cannot blow the LLM's context.
            ``None``: no limit.
        context_keep: When a limit is passed, the oldest whole turns are
            dropped until the context is down to this fraction of the limits.
            Trimming in steps, not one turn per reply, keeps the prompt's
            beginning unchanged for many replies (providers cache it).
        max_tool_output_chars: A tool's output (or error) longer than this is
            cut, with a note saying so, before it reaches the chat context,
            the ``function_call`` event and the LLM.
        max_metrics_turns: Per-turn :class:`~vocalis.observability.metrics.TurnMetrics`
            kept in ``session.metrics`` (the newest; older ones are dropped).
            The session summary still covers every turn.
        max_agent_audio_ahead: Seconds of agent audio the session's audio
            output may hold ahead of playout. Past it, ``capture_frame``
            waits (about one frame, at most 2 s) so the TTS runs at most
            this far ahead of what the user hears. ``None``: no limit.
    """

    max_context_items: int | None = 200
    max_context_chars: int | None = 100_000
    context_keep: float = 0.75
    max_tool_output_chars: int = 16_000
    max_metrics_turns: int = 1_000
    max_agent_audio_ahead: float | None = 10.0

    def __post_init__(self) -> None:
        for name in ("max_context_items", "max_context_chars"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"SessionLimits.{name} must be a positive int or None, got {value!r}")
        for name in ("max_tool_output_chars", "max_metrics_turns"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SessionLimits.{name} must be a positive int, got {value!r}")
        if not 0.0 < self.context_keep <= 1.0:
            raise ValueError(f"SessionLimits.context_keep must be in (0, 1], got {self.context_keep!r}")
        ahead = self.max_agent_audio_ahead
        if ahead is not None and not ahead > 0:
            raise ValueError(f"SessionLimits.max_agent_audio_ahead must be positive seconds or None, got {ahead!r}")


def item_chars(item: ChatItem) -> int:
    """Characters an item puts into an LLM request (its text, name and arguments)."""
    if isinstance(item, ChatMessage):
        return len(item.content)
    if isinstance(item, FunctionCall):
        return len(item.name) + len(item.arguments)
    return len(item.name) + len(item.output)


def trim_chat_context(
    chat_ctx: ChatContext,
    *,
    max_items: int | None,
    max_chars: int | None,
    keep: float = 0.75,
) -> int:
    """Drop the oldest items once the context passes a limit.

    The leading SYSTEM/DEVELOPER messages are always kept and not counted.
    When either limit is passed, the newest items that fit in ``keep`` times
    the limits are kept, and the cut moves forward to the next user message
    when there is one, so whole turns go and a tool call is never separated
    from its output (an output whose call was dropped is dropped too). The
    newest item is always kept.

    Args:
        chat_ctx: The context, trimmed in place.
        max_items: Item limit (``None``: none).
        max_chars: Character limit (``None``: none).
        keep: Fraction of the limits to trim down to.

    Returns:
        How many items were dropped.
    """
    items = chat_ctx.items
    head = 0
    while head < len(items) and _is_instruction(items[head]):
        head += 1
    sizes = [item_chars(item) for item in items[head:]]
    over_items = max_items is not None and len(sizes) > max_items
    over_chars = max_chars is not None and sum(sizes) > max_chars
    if not (over_items or over_chars):
        return 0
    item_budget = max(1, int(max_items * keep)) if max_items is not None else len(sizes)
    char_budget = max(1, int(max_chars * keep)) if max_chars is not None else None
    kept, total = 0, 0
    for size in reversed(sizes):
        if kept >= item_budget or (char_budget is not None and kept and total + size > char_budget):
            break
        kept += 1
        total += size
    tail = items[len(items) - kept :]
    for index, item in enumerate(tail):
        if isinstance(item, ChatMessage) and item.role == ChatRole.USER:
            kept -= index  # start the kept part on a turn boundary
            break
    before = len(items)
    chat_ctx.truncate(kept)
    return before - len(chat_ctx.items)
