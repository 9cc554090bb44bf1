"""The built-in assistant that ``vocalis talk`` and ``vocalis serve`` use by default."""

from __future__ import annotations

import datetime

from vocalis.session.agent import Agent
from vocalis.tools.function import function_tool

INSTRUCTIONS = (
    "You are Vocalis, a friendly voice assistant running fully offline on this computer. "
    "You are talking out loud: answer in one or two short sentences of plain spoken "
    "English, with no lists, markdown, emoji or code."
)


class DefaultAssistant(Agent):
    """A short-spoken general assistant with a clock tool.

    Args:
        greeting: Said when the session starts (None: wait for the user).
    """

    def __init__(self, greeting: str | None = None) -> None:
        super().__init__(INSTRUCTIONS, name="Vocalis")
        self.greeting = greeting

    async def on_enter(self) -> None:
        if self.greeting and self.session is not None:
            await self.session.say(self.greeting)

    @function_tool
    async def current_time(self) -> str:
        """Get the current local date and time."""
        now = datetime.datetime.now().astimezone()
        return now.strftime("%A %d %B %Y, %H:%M %Z")


def default_agent() -> DefaultAssistant:
    """Factory for ``--agent vocalis.session.assistant:default_agent``."""
    return DefaultAssistant()
