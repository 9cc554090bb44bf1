"""The session and the agent as agents and tools hold them: typed Protocols.

An :class:`~vocalis.session.agent.Agent` knows the session that runs it
(``self.session``) through :class:`SessionAPI`, so the agent's module does
not import the session's (the session imports the agent); a tool's
:class:`~vocalis.ToolContext` carries the session as a :class:`SessionAPI`
and the agent as an :class:`AgentAPI`.
:class:`~vocalis.session.agent_session.AgentSession` and
:class:`~vocalis.session.agent.Agent` satisfy them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from vocalis.chat import ChatContext
    from vocalis.speech import SpeechHandle
    from vocalis.states import AgentState, UserState


class SessionAPI(Protocol):
    """What an application or an agent does with a running session."""

    @property
    def id(self) -> str:
        """The session's id (for logs)."""
        ...

    @property
    def closed(self) -> bool:
        """Whether the session closed (or is closing)."""
        ...

    @property
    def user_state(self) -> UserState:
        """What the user is doing now."""
        ...

    @property
    def agent_state(self) -> AgentState:
        """What the agent is doing now."""
        ...

    @property
    def current_speech(self) -> SpeechHandle | None:
        """The utterance being generated or played, if any."""
        ...

    async def say(self, message: str, *, interruptible: bool = True, wait_for_playback: bool = False) -> SpeechHandle:
        """Speak ``message`` as is (queued after the current utterance)."""
        ...

    async def reply(
        self, instructions: str, wait_for_playback: bool = True, *, interruptible: bool = True
    ) -> SpeechHandle:
        """Have the LLM answer now, guided by extra ``instructions``."""
        ...

    async def send_text(self, text: str, *, wait_for_playback: bool = True) -> SpeechHandle:
        """Take ``text`` as a complete user turn."""
        ...

    def interrupt(self, *, force: bool = False) -> bool:
        """Stop the agent's current utterance now."""
        ...

    async def leave(self) -> None:
        """Leave the conversation (closes the session)."""
        ...

    async def close(self, *, reason: str = "closed") -> None:
        """Stop everything and release resources."""
        ...

    def report_error(self, source: str, error: BaseException | str, *, recoverable: bool = True) -> None:
        """Emit an ``error`` event and log it; the session keeps running."""
        ...


class AgentAPI(Protocol):
    """What a tool does with the agent that called it."""

    @property
    def name(self) -> str:
        """A label for logs and handoff messages."""
        ...

    @property
    def instructions(self) -> str:
        """The system prompt."""
        ...

    @property
    def chat_context(self) -> ChatContext:
        """The conversation so far."""
        ...

    def update_instructions(self, instructions: str) -> None:
        """Replace the system prompt (the conversation keeps going)."""
        ...
