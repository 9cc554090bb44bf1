"""Commands of first-party plugins name the package to install when it is missing."""

from __future__ import annotations

import importlib.metadata

import pytest
from click.testing import CliRunner

from vocalis.cli.main import FIRST_PARTY_COMMANDS, cli

CONSOLE_PLUGIN = """
import click
from vocalis import hookimpl

@click.command("console")
def console():
    '''A stand-in console.'''
    click.echo("console ran")

@hookimpl
def vocalis_register_commands(register):
    register(console)
"""


def _not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every first-party distribution look uninstalled, whatever this env holds."""
    real = importlib.metadata.version

    def version(name: str) -> str:
        if name in FIRST_PARTY_COMMANDS.values():
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)


@pytest.mark.parametrize(("command", "distribution"), [("console", "vocalis-console"), ("mcp", "vocalis-mcp")])
def test_missing_plugin_command_names_the_package(
    monkeypatch: pytest.MonkeyPatch, command: str, distribution: str
) -> None:
    monkeypatch.setenv("VOCALIS_DISABLE_PLUGIN_AUTOLOAD", "1")
    _not_installed(monkeypatch)
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 2
    assert f"vocalis {command} needs the {distribution} plugin: pip install {distribution}" in result.output
    assert "No such command" not in result.output


def test_installed_but_not_loaded_points_to_vocalis_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_DISABLE_PLUGIN_AUTOLOAD", "1")
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: "9.9.9" if name == "vocalis-console" else real(name)
    )
    result = CliRunner().invoke(cli, ["console"])
    assert result.exit_code == 2
    assert "installed but not loaded" in result.output and "vocalis plugins" in result.output
    assert "pip install" not in result.output


def test_unknown_names_keep_clicks_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_DISABLE_PLUGIN_AUTOLOAD", "1")
    _not_installed(monkeypatch)
    result = CliRunner().invoke(cli, ["consle"])
    assert result.exit_code == 2
    assert "No such command 'consle'" in result.output and "pip install" not in result.output


def test_a_loaded_plugin_command_runs_without_a_hint(dists, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_PLUGINS", dists.install("vocalis-consolefake", CONSOLE_PLUGIN))
    _not_installed(monkeypatch)
    result = CliRunner().invoke(cli, ["console"])
    assert (result.exit_code, result.output) == (0, "console ran\n")


def test_built_in_commands_are_not_affected() -> None:
    result = CliRunner().invoke(cli, ["report", "--help"])
    assert result.exit_code == 0 and "--long-reply" in result.output
