"""The user's and the agent's states in a session, and what moves them.

The session owns both states; its pipeline reports what happened (the user
started or stopped speaking, agent audio started) and this decides the new
states. Each change is emitted once (``user_state_changed``,
``agent_state_changed``); a closing agent stays closing.
"""

from __future__ import annotations

from collections.abc import Callable

from vocalis.states import AgentState, UserState


class SessionStates:
    """Tracks what the user and the agent are doing.

    Args:
        emit: Emits a session event with its payload.

    Attributes:
        user: What the user is doing now.
        agent: What the agent is doing now.
    """

    def __init__(self, emit: Callable[..., None]) -> None:
        self._emit = emit
        self.user = UserState.IDLE
        self.agent = AgentState.STARTING

    def set_user(self, state: UserState) -> None:
        """Move the user to ``state`` (an event only on a change)."""
        if state is self.user:
            return
        old, self.user = self.user, state
        self._emit("user_state_changed", {"state": state, "old_state": old})

    def set_agent(self, state: AgentState) -> None:
        """Move the agent to ``state`` (an event only on a change; never out of closing)."""
        if state is self.agent or self.agent is AgentState.CLOSING:
            return
        old, self.agent = self.agent, state
        self._emit("agent_state_changed", {"state": state, "old_state": old})

    def settle(self) -> None:
        """After speech ends: listening if the user talks, else idle."""
        if self.user is UserState.SPEAKING:
            self.set_agent(AgentState.LISTENING)
        else:
            self.set_agent(AgentState.IDLE)
            self.set_user(UserState.IDLE)

    def user_speech_started(self, *, agent_busy: bool) -> None:
        """The user started speaking (``agent_busy``: an utterance is running)."""
        self.set_user(UserState.SPEAKING)
        if not agent_busy:
            self.set_agent(AgentState.LISTENING)

    def user_speech_stopped(self, *, agent_busy: bool, agent_audible: bool) -> None:
        """The user stopped speaking.

        Args:
            agent_busy: An utterance is running.
            agent_audible: Its audio is playing.
        """
        if agent_busy and agent_audible:
            self.set_user(UserState.LISTENING)
            return
        self.set_user(UserState.IDLE)
        if not agent_busy:
            self.set_agent(AgentState.IDLE)

    def agent_audio_started(self) -> None:
        """The agent's audio started playing: the user listens, unless they talk."""
        self.set_agent(AgentState.SPEAKING)
        if self.user is not UserState.SPEAKING:
            self.set_user(UserState.LISTENING)
