"""The payload of each session event, as a ``TypedDict``.

At run time a payload is a plain ``dict`` (``event["text"]`` reads it); the
types only tell mypy which keys each event carries, so a wrong key at an
``emit`` site, or a handler that reads one that is not there, is an error
before anything runs. :data:`EVENT_PAYLOADS` maps each event name of
:data:`vocalis.states.SessionEvent` to its payload type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from vocalis.speech import SpeechSource
from vocalis.states import AgentState, SessionEvent, UserState

__all__ = [
    "EVENT_PAYLOADS",
    "AgentHandoffEvent",
    "AgentStateChangedEvent",
    "AgentTurnEvent",
    "BackchannelEvent",
    "CloseEvent",
    "EndOfTurnProbabilityEvent",
    "ErrorEvent",
    "FalseInterruptionEvent",
    "FunctionCallEvent",
    "InterruptionEvent",
    "MetricsCollectedEvent",
    "PreemptiveGenerationEvent",
    "SessionEvent",
    "SpeechInEvent",
    "SpeechOutEvent",
    "UserStateChangedEvent",
    "UserTurnEvent",
    "WakeUpEvent",
]


class UserStateChangedEvent(TypedDict):
    """``user_state_changed``: what the user does changed (only on a change)."""

    state: UserState
    old_state: UserState


class AgentStateChangedEvent(TypedDict):
    """``agent_state_changed``: what the agent does changed (only on a change)."""

    state: AgentState
    old_state: AgentState


class SpeechInEvent(TypedDict):
    """``on_speech_in``: a user transcript, interim or final."""

    text: str
    is_final: bool
    language: str | None


class SpeechOutEvent(TypedDict):
    """``on_speech_out``: an agent sentence starts playing (by a playout mark)."""

    text: str
    speech_id: str


class WakeUpEvent(TypedDict):
    """``on_wake_up``: the user said nothing for ``idle_seconds``."""

    idle_seconds: float


class UserTurnEvent(TypedDict):
    """``user_turn``: a committed user turn."""

    text: str


class AgentTurnEvent(TypedDict):
    """``agent_turn``: an agent utterance ended; ``text`` is what was heard."""

    speech_id: str
    text: str
    interrupted: bool
    source: SpeechSource


class FunctionCallEvent(TypedDict):
    """``function_call``: a tool call finished (``arguments`` is the LLM's JSON text)."""

    call_id: str
    name: str
    arguments: str
    output: str
    is_error: bool


AgentHandoffEvent = TypedDict("AgentHandoffEvent", {"from": str, "to": str})
"""``agent_handoff``: the conversation moved from one agent to another (their names)."""


class InterruptionEvent(TypedDict):
    """``interruption``: the user cut the agent off.

    ``reason`` is ``"speech"``, ``"words"``, ``"phrase"`` or ``"turn"``.
    """

    reason: str
    speech_id: str


class FalseInterruptionEvent(TypedDict):
    """``false_interruption``: the agent resumed after a pause."""

    speech_id: str


class BackchannelEvent(TypedDict):
    """``backchannel``: listener feedback ("mm-hm") that was ignored."""

    text: str


class EndOfTurnProbabilityEvent(TypedDict):
    """``end_of_turn_probability``: the turn detector's verdict (None without one)."""

    probability: float | None
    transcript: str


class PreemptiveGenerationEvent(TypedDict):
    """``preemptive_generation``: a reply started before the turn was over."""

    transcript: str


class MetricsCollectedEvent(TypedDict):
    """``metrics_collected``: an agent turn's metrics.

    ``metrics`` is a :class:`vocalis.observability.metrics.TurnMetrics` (typed
    ``Any`` here: this foundation module does not import observability).
    """

    metrics: Any


class ErrorEvent(TypedDict):
    """``error``: something failed; ``source`` names it (``"stt:whisper"``, ``"tool:x"``).

    ``kind`` is the :class:`~vocalis.providers.base.ErrorKind` value of a
    provider's error (``"timeout"``, ``"auth"``...), ``"unknown"`` otherwise.
    """

    source: str
    message: str
    recoverable: bool
    kind: str


class CloseEvent(TypedDict):
    """``close``: the session closed.

    ``summary`` is a :class:`vocalis.observability.metrics.SessionSummary`
    (typed ``Any`` here, as ``MetricsCollectedEvent.metrics``); ``reason`` is
    what ``close(reason=...)`` got: ``"closed"``, ``"idle"``, ``"hangup"``...
    """

    session_id: str
    summary: Any
    reason: str


EVENT_PAYLOADS: Mapping[SessionEvent, type[Any]] = {
    "user_state_changed": UserStateChangedEvent,
    "agent_state_changed": AgentStateChangedEvent,
    "on_speech_in": SpeechInEvent,
    "on_speech_out": SpeechOutEvent,
    "on_wake_up": WakeUpEvent,
    "user_turn": UserTurnEvent,
    "agent_turn": AgentTurnEvent,
    "function_call": FunctionCallEvent,
    "agent_handoff": AgentHandoffEvent,
    "interruption": InterruptionEvent,
    "false_interruption": FalseInterruptionEvent,
    "backchannel": BackchannelEvent,
    "end_of_turn_probability": EndOfTurnProbabilityEvent,
    "preemptive_generation": PreemptiveGenerationEvent,
    "metrics_collected": MetricsCollectedEvent,
    "error": ErrorEvent,
    "close": CloseEvent,
}
"""Each session event's payload type (for tests and documentation tools)."""
