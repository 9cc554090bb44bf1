"""Command-line commands contributed by plugins.

A plugin adds a ``vocalis <name>`` command (or group) by implementing
``vocalis_register_commands(register)`` and calling ``register(command)``
with a :class:`click.Command`. The core never imports the plugin for this:
the CLI asks the plugin manager only when a command it does not know is
invoked, or when it lists commands for ``--help``.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import click
from loguru import logger

from vocalis.plugin.registry import PluginOrigin, PluginRecord, RegistrationError
from vocalis.settings import validate_name

COMMANDS_HOOK = "vocalis_register_commands"
"""The hook through which plugins add CLI commands."""


class PluginHooks(Protocol):
    """What :func:`collect_commands` needs of the plugin manager."""

    @property
    def hook(self) -> Any: ...  # pluggy's HookRelay: one attribute per hook

    @property
    def records(self) -> dict[str, PluginRecord]: ...


@dataclass(frozen=True)
class CommandEntry:
    """One command a plugin registered.

    Attributes:
        name: The command's name on the command line.
        command: The click command or group.
        origin: Which plugin registered it.
    """

    name: str
    command: click.Command
    origin: PluginOrigin


class CommandRegister:
    """What ``vocalis_register_commands`` receives: call it once per command.

    Args:
        taken: Names already in use (built-in commands and earlier plugins'),
            mapped to who owns them.
        origin: The plugin whose hook is running.
    """

    def __init__(self, taken: dict[str, str], origin: PluginOrigin) -> None:
        self._taken = taken
        self.origin = origin
        self.registered: list[CommandEntry] = []

    def __call__(self, command: click.Command, name: str | None = None) -> None:
        """Register a click command (or group) as ``vocalis <name>``.

        Args:
            command: A :class:`click.Command`, e.g. made with ``@click.command``
                or ``@click.group``.
            name: Overrides ``command.name``.

        Raises:
            RegistrationError: Not a click command, a bad name, or a name that
                a built-in command or another plugin already uses.
        """
        if not isinstance(command, click.Command):
            raise RegistrationError(f"{COMMANDS_HOOK} takes click commands, got {type(command).__name__}")
        name = validate_name(name or command.name or "")
        owner = self._taken.get(name)
        if owner is not None:
            raise RegistrationError(f"command {name!r} from plugin {self.origin.plugin!r} clashes with {owner}")
        self._taken[name] = f"the command of plugin {self.origin.plugin!r}"
        self.registered.append(CommandEntry(name, command, self.origin))


def collect_commands(pm: PluginHooks, builtin: Iterable[str] = ()) -> dict[str, CommandEntry]:
    """Run every plugin's ``vocalis_register_commands`` hook, each on its own.

    A plugin whose hook raises is marked failed in ``pm.records`` and the
    others still contribute.

    Args:
        pm: The plugin manager.
        builtin: Names of the core's own commands, which plugins cannot take.

    Returns:
        Commands by name.
    """
    taken = {name: "a built-in command" for name in builtin}
    commands: dict[str, CommandEntry] = {}
    for impl in getattr(pm.hook, COMMANDS_HOOK).get_hookimpls():
        record: PluginRecord = pm.records.get(impl.plugin_name) or PluginRecord(
            impl.plugin_name, PluginOrigin(impl.plugin_name)
        )
        if impl.hookwrapper or impl.wrapper:
            record.fail(f"{COMMANDS_HOOK} must be a plain hookimpl, not a wrapper: it registered nothing")
            continue
        register = CommandRegister(taken, record.origin)
        try:
            impl.function(*[register for _ in impl.argnames])
        except Exception as exc:
            record.fail(f"{COMMANDS_HOOK} raised {type(exc).__name__}: {exc}")
            logger.debug("{}", "".join(traceback.format_exception(exc)))
        for entry in register.registered:
            commands[entry.name] = entry
    return commands
