"""How a pipeline sees the session that runs it: small typed Protocols.

A pipeline, its turn controller and its reply generation never hold the
session itself: :meth:`Pipeline.attach <vocalis.pipeline.base.Pipeline.attach>`
gets a :class:`SessionPort`, the session's adapter for its pipeline (in the
spirit of LiveKit's ``RecognitionHooks``). Each part takes the narrowest
Protocol it needs: the turn controller a :class:`TurnHost`, the rest a
:class:`SessionPort`. The session decides what each call does to its state
(the user's and the agent's states, its speech queue, its wake-up timer).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from vocalis.tools.runner import ToolOwner

if TYPE_CHECKING:
    from vocalis.chat import ChatContext
    from vocalis.providers.transport import AudioOutput, Transport
    from vocalis.speech import SpeechHandle
    from vocalis.stages import StageEvent, UserTurnTiming
    from vocalis.states import AgentState
    from vocalis.tools.runner import ToolRunner


class AgentView(ToolOwner, Protocol):
    """The active agent, as a pipeline reads it (:class:`vocalis.Agent` fits)."""

    @property
    def instructions(self) -> str:
        """The system prompt."""
        ...

    @property
    def chat_context(self) -> ChatContext:
        """The conversation so far, where turns are recorded."""
        ...


class ConversationHooks(Protocol):
    """The session's conversation flow around one user turn (cascading only)."""

    async def turn_started(self, transcript: str) -> None:
        """The user's turn was committed (its failures are reported, not raised)."""
        ...

    def text_for(self, transcript: str, llm_text: AsyncIterator[str]) -> AsyncIterator[str]:
        """The text to speak for the turn, made from the LLM's ``llm_text``."""
        ...

    async def turn_ended(self) -> None:
        """The reply for the turn finished or was interrupted."""
        ...


class TurnHost(Protocol):
    """What the turn controller needs of its session."""

    @property
    def agent(self) -> AgentView:
        """The active agent."""
        ...

    @property
    def audio_output(self) -> AudioOutput:
        """Where agent audio plays (paused and resumed on false interruptions)."""
        ...

    @property
    def current_speech(self) -> SpeechHandle | None:
        """The utterance being generated or played, if any."""
        ...

    def emit(self, event: str, *args: Any) -> None:
        """Emit a session event."""
        ...

    def report_error(self, source: str, error: BaseException | str, *, recoverable: bool = True) -> None:
        """Report a failure; the session keeps running."""
        ...

    def set_agent_state(self, state: AgentState) -> None:
        """Move the agent to ``state`` (no event when unchanged or closing)."""
        ...

    def user_speech_started(self) -> None:
        """The user started speaking."""
        ...

    def user_speech_stopped(self) -> None:
        """The user stopped speaking."""
        ...

    def user_activity(self) -> None:
        """Words of the user were recognised: a new idle period begins later."""
        ...

    def start_user_turn(self, transcript: str, timing: UserTurnTiming | None = None) -> SpeechHandle:
        """Commit the user's turn: queue the agent's reply to ``transcript``."""
        ...

    def apologize(self) -> None:
        """A user turn was lost to a failure: say the session's ``error_message``, if any."""
        ...


class SessionPort(TurnHost, Protocol):
    """Everything a pipeline needs of the session that runs it."""

    @property
    def tools(self) -> ToolRunner:
        """Runs the LLM's tool calls."""
        ...

    @property
    def transport(self) -> Transport | None:
        """The session's transport, if any."""
        ...

    @property
    def closed(self) -> bool:
        """Whether the session is closing or closed."""
        ...

    @property
    def error_message(self) -> str | None:
        """Spoken when a turn fails before anything was heard (None: silent)."""
        ...

    @property
    def conversation(self) -> ConversationHooks | None:
        """The session's conversation flow, if it has one."""
        ...

    def observe(self, event: StageEvent) -> None:
        """Report a stage of an utterance to the session's observers (metrics, traces)."""
        ...

    def agent_audio_started(self) -> None:
        """The first audio of an utterance reached the output."""
        ...

    def enqueue(self, handle: SpeechHandle, run: Callable[[], Awaitable[None]], *, front: bool = False) -> SpeechHandle:
        """Queue an utterance: ``run`` plays it when its turn comes."""
        ...


def output_label(session: SessionPort) -> str:
    """What agent audio goes to, for error reports: the transport's label."""
    return session.transport.label if session.transport is not None else "audio output"
