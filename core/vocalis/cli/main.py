"""The ``vocalis`` command line."""

from __future__ import annotations

import click

from vocalis import __version__
from vocalis.cli.plugins_cmd import plugins_command
from vocalis.cli.report_cmd import report_command
from vocalis.cli.run_cmd import run_command
from vocalis.cli.talk_cmd import talk_command
from vocalis.log import configure_logging, level_from_verbosity


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vocalis")
@click.option(
    "--log-level",
    default=None,
    type=click.Choice(["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False),
    help="Minimum log level (TRACE, DEBUG, INFO, WARNING, ERROR); default from "
    "VOCALIS_LOG_LEVEL or INFO.",
)
@click.option("-v", "--verbose", count=True, help="More log output; repeat for more.")
@click.pass_context
def cli(ctx: click.Context, log_level: str | None, verbose: int) -> None:
    """Vocalis: real-time voice AI agents."""
    from vocalis.settings import VocalisSettings

    settings = VocalisSettings()
    ctx.obj = settings
    configure_logging(level_from_verbosity(log_level or settings.log_level, verbose))


cli.add_command(plugins_command)
cli.add_command(report_command)
cli.add_command(run_command)
cli.add_command(talk_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="vocalis")


if __name__ == "__main__":  # pragma: no cover
    main()
