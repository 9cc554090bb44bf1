"""Entry point of the ``console`` plugin: the transport and the ``vocalis console`` command."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vocalis import hookimpl

if TYPE_CHECKING:
    from vocalis.plugin.commands import CommandRegister
    from vocalis.plugin.registry import ProviderRegister


@hookimpl
def vocalis_register_transport(register: ProviderRegister[Any]) -> None:
    """Register :class:`~vocalis_console.transport.ConsoleTransport` as ``console``."""
    from vocalis_console.transport import ConsoleTransport

    register(ConsoleTransport)


@hookimpl
def vocalis_register_commands(register: CommandRegister) -> None:
    """Register ``vocalis console``."""
    from vocalis_console.cli import console_command

    register(console_command)
