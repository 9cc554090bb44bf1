"""The agent: instructions, tools and lifecycle hooks of one persona."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from vocalis.chat import ChatContext, ChatRole
from vocalis.tools.function import FunctionTool, as_function_tool, find_function_tools

if TYPE_CHECKING:
    from vocalis.event_types import SpeechInEvent, SpeechOutEvent
    from vocalis.providers.tools import ToolSource
    from vocalis.session_api import SessionAPI


class Agent:
    """What the assistant is told, what it can do, and how it starts and ends.

    Subclass it to add ``@function_tool`` methods and to override
    :meth:`on_enter` (e.g. greet the user), :meth:`on_exit`,
    :meth:`on_speech_in` and :meth:`on_speech_out`. A tool that
    returns another ``Agent`` hands the conversation over to it.

    Args:
        instructions: The system prompt.
        tools: Extra tools: ``@function_tool`` functions or plain callables.
        mcp_servers: Tool sources (e.g. ``MCPServerStdio``) started with the
            session; their tools are offered next to the function tools.
        chat_context: A conversation to start from.
        inherit_context: When this agent takes over from another, copy the
            previous conversation (without its instructions).
        name: A label for logs and handoff messages (class name by default).
    """

    def __init__(
        self,
        instructions: str,
        *,
        tools: Sequence[Callable[..., object] | FunctionTool] = (),
        mcp_servers: Sequence[ToolSource] = (),
        chat_context: ChatContext | None = None,
        inherit_context: bool = False,
        name: str | None = None,
    ) -> None:
        self.name = name or type(self).__name__
        self.instructions = instructions
        self.mcp_servers: list[ToolSource] = list(mcp_servers)
        self.inherit_context = inherit_context
        self.chat_context = chat_context or ChatContext()
        self.chat_context.set_instructions(instructions)
        self.session: SessionAPI | None = None
        own = find_function_tools(self)
        extra = [as_function_tool(tool) for tool in tools]
        self._tools: dict[str, FunctionTool] = {}
        for tool in [*own, *extra]:
            if tool.name in self._tools:
                raise ValueError(f"agent {self.name!r} has two tools named {tool.name!r}")
            self._tools[tool.name] = tool

    @property
    def tools(self) -> list[FunctionTool]:
        """The agent's function tools (MCP tools are added by the session)."""
        return list(self._tools.values())

    def add_tool(self, tool: Callable[..., object] | FunctionTool) -> FunctionTool:
        """Add a function tool at run time."""
        function_tool = as_function_tool(tool)
        if function_tool.name in self._tools:
            raise ValueError(f"agent {self.name!r} already has a tool {function_tool.name!r}")
        self._tools[function_tool.name] = function_tool
        return function_tool

    def remove_tool(self, name: str) -> None:
        """Remove a function tool by name (no error when absent)."""
        self._tools.pop(name, None)

    def update_instructions(self, instructions: str) -> None:
        """Replace the system prompt for the following replies."""
        self.instructions = instructions
        self.chat_context.set_instructions(instructions)

    def inherit_from(self, previous: Agent) -> None:
        """Take over ``previous``'s conversation, keeping own instructions."""
        for item in previous.chat_context.copy(exclude_instructions=True).items:
            self.chat_context.append(item)

    async def on_enter(self) -> None:
        """Called when the agent becomes active (session start or handoff)."""

    async def on_exit(self) -> None:
        """Called when the agent stops being active (handoff or close)."""

    def on_speech_in(self, data: SpeechInEvent) -> Awaitable[None] | None:
        """Called for each user transcript (the session's ``on_speech_in`` event).

        Override with a plain or an ``async`` method; ``data`` is the event's
        payload (``text``, ``is_final``, ``language``), interim transcripts
        included. An exception is reported as an ``error`` event.
        """
        return None

    def on_speech_out(self, data: SpeechOutEvent) -> Awaitable[None] | None:
        """Called when agent speech starts playing (the ``on_speech_out`` event).

        Override with a plain or an ``async`` method; ``data`` is the event's
        payload (``text``, ``speech_id``). An exception is reported as an
        ``error`` event.
        """
        return None

    async def cleanup(self) -> None:
        """Release what the agent holds; called once when the session closes."""

    def last_user_text(self) -> str:
        """The most recent user message, or an empty string."""
        message = self.chat_context.last_message(ChatRole.USER)
        return message.content if message else ""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} tools={list(self._tools)}>"
