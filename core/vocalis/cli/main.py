"""The ``vocalis`` command line."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from vocalis import __version__
from vocalis.cli.eval_cmd import eval_command
from vocalis.cli.plugins_cmd import plugins_command
from vocalis.cli.report_cmd import report_command
from vocalis.cli.run_cmd import run_command
from vocalis.cli.serve_cmd import serve_command
from vocalis.cli.talk_cmd import talk_command
from vocalis.log import configure_logging, level_from_verbosity

if TYPE_CHECKING:
    from vocalis.plugin.commands import CommandEntry

FIRST_PARTY_COMMANDS: dict[str, str] = {
    "console": "vocalis-console",
    "mcp": "vocalis-mcp",
}
"""Commands that first-party plugins add, and the distribution that adds each.

Without the plugin such a name would fail as an unknown command; naming the
package to install is the useful answer.
"""


def missing_plugin_hint(name: str) -> str | None:
    """What to tell a user who ran a first-party plugin's command without it.

    Returns:
        The hint, or None when ``name`` is no first-party plugin command.
    """
    distribution = FIRST_PARTY_COMMANDS.get(name)
    if distribution is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        version(distribution)
    except PackageNotFoundError:
        return f"vocalis {name} needs the {distribution} plugin: pip install {distribution}"
    # Installed yet not loaded: disabled (VOCALIS_PLUGINS) or failed to load.
    return f"vocalis {name} comes from {distribution}, which is installed but not loaded; see `vocalis plugins`"


class PluginCommandGroup(click.Group):
    """The top-level group: built-in commands plus those plugins register.

    Plugins are loaded only when a name is not built in or when ``--help``
    lists every command, so built-in commands start as fast as before. The
    collected commands live in the invocation's context, not on the group,
    so each invocation sees the plugins installed at that time.
    """

    def plugin_commands(self, ctx: click.Context) -> dict[str, CommandEntry]:
        """Commands from installed plugins, collected once per invocation."""
        key = "vocalis.plugin_commands"
        if key not in ctx.meta:
            from vocalis.plugin.commands import collect_commands
            from vocalis.plugin.manager import make_plugin_manager

            ctx.meta[key] = collect_commands(make_plugin_manager(), builtin=self.commands)
        return ctx.meta[key]  # type: ignore[no-any-return]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.plugin_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if command is None and (entry := self.plugin_commands(ctx).get(cmd_name)) is not None:
            command = entry.command
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if not ctx.resilient_parsing and self.get_command(ctx, name) is None:
            hint = missing_plugin_hint(name)
            if hint is not None:
                ctx.fail(hint)
        return super().resolve_command(ctx, args)


@click.group(cls=PluginCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vocalis")
@click.option(
    "--log-level",
    default=None,
    type=click.Choice(["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False),
    help="Minimum log level (TRACE, DEBUG, INFO, WARNING, ERROR); default from VOCALIS_LOG_LEVEL or INFO.",
)
@click.option("-v", "--verbose", count=True, help="More log output; repeat for more.")
@click.pass_context
def cli(ctx: click.Context, log_level: str | None, verbose: int) -> None:
    """Vocalis: real-time voice AI agents."""
    from vocalis.settings import VocalisSettings

    settings = VocalisSettings()
    ctx.obj = settings
    configure_logging(level_from_verbosity(log_level or settings.log_level, verbose))


cli.add_command(eval_command)
cli.add_command(plugins_command)
cli.add_command(report_command)
cli.add_command(run_command)
cli.add_command(serve_command)
cli.add_command(talk_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="vocalis")


if __name__ == "__main__":  # pragma: no cover
    main()
