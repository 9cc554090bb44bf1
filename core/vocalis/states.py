"""Session states and event names."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args


class UserState(StrEnum):
    """What the user is doing."""

    IDLE = "idle"
    SPEAKING = "speaking"
    LISTENING = "listening"


class AgentState(StrEnum):
    """What the agent is doing."""

    STARTING = "starting"
    IDLE = "idle"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    CLOSING = "closing"


SessionEvent = Literal[
    "user_state_changed",
    "agent_state_changed",
    "on_speech_in",
    "on_speech_out",
    "on_wake_up",
    "user_turn",
    "agent_turn",
    "function_call",
    "agent_handoff",
    "interruption",
    "false_interruption",
    "backchannel",
    "end_of_turn_probability",
    "preemptive_generation",
    "metrics_collected",
    "error",
    "close",
]
"""The name of an event an :class:`~vocalis.session.AgentSession` emits.

Each has a payload type in :mod:`vocalis.event_types`; mypy rejects a
misspelt name given to ``session.on`` or ``session.emit``.
"""

SESSION_EVENTS: frozenset[str] = frozenset(get_args(SessionEvent))
"""Events an :class:`~vocalis.session.AgentSession` emits."""

FORWARDED_EVENTS = frozenset(
    {
        "user_state_changed",
        "agent_state_changed",
        "on_speech_in",
        "on_speech_out",
        "user_turn",
        "agent_turn",
        "function_call",
        "agent_handoff",
        "metrics_collected",
        "error",
    }
)
"""Events the session also hands to its transport (to show in a UI)."""
