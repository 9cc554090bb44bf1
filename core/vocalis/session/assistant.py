"""The built-in assistant that ``vocalis talk`` and ``vocalis serve`` use by default."""

from __future__ import annotations

from vocalis.session import assistant_tools
from vocalis.session.agent import Agent
from vocalis.tools.function import function_tool

INSTRUCTIONS = (
    "You are Vocalis, a friendly voice assistant running fully offline on this computer. "
    "You are talking out loud: answer in one or two short sentences of plain spoken "
    "English, with no lists, markdown, emoji or code."
)


class DefaultAssistant(Agent):
    """A short-spoken general assistant with tools for the time anywhere,
    arithmetic and unit conversion (all offline).

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
    async def current_time(self, city: str = "") -> str:
        """Get the current date and time, here or in a city.

        Args:
            city: A city such as "Tokyo"; empty for the local time here.
        """
        return assistant_tools.time_in(city)

    @function_tool
    async def calculate(self, expression: str) -> str:
        """Do arithmetic: add, subtract, multiply, divide, powers.

        Args:
            expression: The calculation, e.g. "17 * 23" or "(4 + 6) / 3".
        """
        return assistant_tools.calculate(expression)

    @function_tool
    async def convert_units(self, value: float, from_unit: str, to_unit: str) -> str:
        """Convert a quantity between units: length, weight, volume, speed, time, temperature.

        Args:
            value: The number to convert.
            from_unit: Its unit, e.g. "miles" or "fahrenheit".
            to_unit: The unit wanted, e.g. "kilometers" or "celsius".
        """
        return assistant_tools.convert_units(value, from_unit, to_unit)


def default_agent() -> DefaultAssistant:
    """Factory for ``--agent vocalis.session.assistant:default_agent``."""
    return DefaultAssistant()
