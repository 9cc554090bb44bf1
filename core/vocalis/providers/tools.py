"""Tool-source contract: MCP servers and other providers of callable tools."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from vocalis.providers.base import Provider, ProviderKind


@runtime_checkable
class Tool(Protocol):
    """A callable tool: a schema for the LLM and an async ``invoke``.

    :class:`vocalis.tools.FunctionTool` and the tools a :class:`ToolSource`
    lists both satisfy it.
    """

    name: str
    description: str
    parameters: dict[str, Any]

    async def invoke(self, arguments: str | Mapping[str, Any] | None, *, context: Any = None) -> Any:
        """Run the tool with the model's arguments (raw JSON or a mapping)."""
        ...


class ToolSource(Provider):
    """Base class of tool sources, such as an MCP server connection.

    The session calls :meth:`start` when it starts, offers
    :meth:`list_tools` to the LLM next to the agent's function tools, and
    calls :meth:`aclose` when it closes.
    """

    kind: ClassVar[ProviderKind] = ProviderKind.TOOLS

    async def start(self) -> None:
        """Connect (start the server process, open the HTTP session, ...)."""

    async def list_tools(self) -> list[Tool]:
        """The tools currently offered."""
        raise NotImplementedError
