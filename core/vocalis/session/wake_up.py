"""The wake-up timer: a callback after a while without user activity."""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING

from vocalis.states import UserState

if TYPE_CHECKING:
    from vocalis.session.core import SessionCore


class WakeUpTimer:
    """Fires ``session.on_wake_up`` once per idle period.

    An idle period starts when the session starts, or when the agent has
    finished speaking and the user is silent; user speech or a transcript
    ends it. While the agent thinks or speaks the timer is paused (and
    restarts in full afterwards). One timer handle per session, no task.
    """

    def __init__(self, session: SessionCore) -> None:
        self.session = session
        self._timer: asyncio.TimerHandle | None = None
        self._fired = False

    def user_activity(self) -> None:
        """The user did something: the next idle period may fire again."""
        self._fired = False
        self.cancel()

    def arm(self) -> None:
        """Start counting, unless already fired this period or not idle."""
        session = self.session
        if session.wake_up is None or session.closed or self._fired:
            return
        if session.current_speech is not None or session.user_state is UserState.SPEAKING:
            return
        self.cancel()
        self._timer = asyncio.get_running_loop().call_later(session.wake_up, self._fire)

    def cancel(self) -> None:
        """Stop counting (the agent is busy or the user is active)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        session = self.session
        idle = session.wake_up
        if session.closed or session.current_speech is not None or idle is None:
            return
        self._fired = True
        session.emit("on_wake_up", {"idle_seconds": idle})
        callback = session.on_wake_up
        if callback is None:
            return
        try:
            result = callback()
        except Exception as exc:
            session.report_error("on_wake_up", exc)
            return
        if inspect.isawaitable(result):
            session.emit_task(result, "on_wake_up")
