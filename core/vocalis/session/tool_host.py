"""The session as its tool runner sees it (:class:`vocalis.tools.runner.ToolHost`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vocalis.session.agent import Agent

if TYPE_CHECKING:
    from vocalis.session.agent_session import AgentSession


class SessionToolHost:
    """Hands a :class:`~vocalis.tools.runner.ToolRunner` the session's events,
    errors and handoffs, and decides which tool results are agents to hand over to.

    Args:
        session: The session the runner serves.
    """

    def __init__(self, session: AgentSession) -> None:
        self._session = session

    @property
    def session(self) -> AgentSession:
        """The session, as tools see it in their ``ToolContext``."""
        return self._session

    def emit(self, event: str, *args: Any) -> None:
        """Emit a session event."""
        self._session.emit(event, *args)

    def report_error(self, source: str, error: BaseException | str, *, recoverable: bool = True) -> None:
        """Report a failure through the session's ``error`` event."""
        self._session.report_error(source, error, recoverable=recoverable)

    def hand_over(self, value: object) -> Agent | None:
        """Switch to ``value`` once the current utterance ends, if it is an :class:`Agent`."""
        if not isinstance(value, Agent):
            return None
        self._session.request_handoff(value)
        return value
