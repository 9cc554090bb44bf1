"""Entry point of the ``mcp`` plugin: registers the stdio MCP tool source and the `vocalis mcp` command."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vocalis import hookimpl
from vocalis_mcp.stdio import MCPServerStdio

if TYPE_CHECKING:
    from vocalis.plugin.commands import CommandRegister
    from vocalis.plugin.registry import ProviderRegister


@hookimpl
def vocalis_register_tools(register: ProviderRegister[MCPServerStdio]) -> None:
    """Register :class:`MCPServerStdio` as ``mcp``."""
    register(MCPServerStdio)


@hookimpl
def vocalis_register_commands(register: CommandRegister) -> None:
    """Register the ``vocalis mcp`` command group."""
    from vocalis_mcp.cli import mcp_command

    register(mcp_command)
