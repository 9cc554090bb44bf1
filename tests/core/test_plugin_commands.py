"""Plugins add ``vocalis`` commands through ``vocalis_register_commands``."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner

from vocalis import make_plugin_manager
from vocalis.cli.main import cli
from vocalis.plugin.commands import collect_commands

GREET_PLUGIN = textwrap.dedent(
    """
    import click
    from vocalis import hookimpl

    @click.command("greet")
    @click.argument("who")
    def greet(who):
        '''Say hello to WHO.'''
        click.echo(f"hello {who}")

    @hookimpl
    def vocalis_register_commands(register):
        register(greet)
    """
)


def _use(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    monkeypatch.setenv("VOCALIS_PLUGINS", ",".join(names))


def test_a_plugin_command_runs_and_shows_in_help(dists, monkeypatch: pytest.MonkeyPatch) -> None:
    _use(monkeypatch, dists.install("vocalis-greeter", GREET_PLUGIN))
    runner = CliRunner()
    result = runner.invoke(cli, ["greet", "Ada"])
    assert (result.exit_code, result.output) == (0, "hello Ada\n")
    help_text = runner.invoke(cli, ["--help"]).output
    assert "greet" in help_text and "Say hello to WHO." in help_text


def test_the_origin_is_recorded(dists, monkeypatch: pytest.MonkeyPatch) -> None:
    _use(monkeypatch, dists.install("vocalis-greeter", GREET_PLUGIN, version="2.0.1"))
    entry = collect_commands(make_plugin_manager())["greet"]
    assert (entry.origin.plugin, entry.origin.distribution, entry.origin.version) == (
        "greeter",
        "vocalis-greeter",
        "2.0.1",
    )


def test_built_in_names_and_duplicates_are_refused(dists, monkeypatch: pytest.MonkeyPatch) -> None:
    shadow = GREET_PLUGIN.replace('@click.command("greet")', '@click.command("talk")')
    first = dists.install("vocalis-greeter", GREET_PLUGIN)
    second = dists.install("vocalis-greeter2", GREET_PLUGIN)
    third = dists.install("vocalis-shadow", shadow)
    _use(monkeypatch, first, second, third)
    pm = make_plugin_manager()
    commands = collect_commands(pm, builtin=cli.commands)
    winner = commands["greet"].origin.plugin
    loser = {"greeter": "greeter2", "greeter2": "greeter"}[winner]
    assert "talk" not in commands
    assert f"clashes with the command of plugin {winner!r}" in pm.records[loser].errors[0]
    assert "clashes with a built-in command" in pm.records["shadow"].errors[0]
    # The real `talk` is untouched.
    assert "--input" in CliRunner().invoke(cli, ["talk", "--help"]).output


def test_a_raising_hook_or_a_non_command_is_isolated(dists, monkeypatch: pytest.MonkeyPatch) -> None:
    raising = "from vocalis import hookimpl\n@hookimpl\ndef vocalis_register_commands(register):\n    raise RuntimeError('boom')\n"  # noqa: E501
    wrong = "from vocalis import hookimpl\n@hookimpl\ndef vocalis_register_commands(register):\n    register(print)\n"
    names = [
        dists.install("vocalis-raiser", raising),
        dists.install("vocalis-wrong", wrong),
        dists.install("vocalis-greeter", GREET_PLUGIN),
    ]
    _use(monkeypatch, *names)
    pm = make_plugin_manager()
    assert set(collect_commands(pm)) == {"greet"}
    assert "RuntimeError: boom" in pm.records["raiser"].errors[0]
    assert "takes click commands" in pm.records["wrong"].errors[0]
    assert CliRunner().invoke(cli, ["greet", "x"]).output == "hello x\n"


def test_built_in_commands_do_not_load_plugins(dists, monkeypatch: pytest.MonkeyPatch) -> None:
    exploding = "raise SystemExit('imported')\n"
    _use(monkeypatch, dists.install("vocalis-exploding", exploding))
    result = CliRunner().invoke(cli, ["plugins", "--help"])
    assert result.exit_code == 0 and "exploding" not in result.output


def test_unknown_command_is_still_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = CliRunner().invoke(cli, ["nope"])
    assert result.exit_code == 2 and "No such command 'nope'" in result.output


def test_plugins_lists_commands(dists, monkeypatch: pytest.MonkeyPatch) -> None:
    _use(monkeypatch, dists.install("vocalis-greeter", GREET_PLUGIN))
    import json

    rows = json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).output)
    (row,) = [r for r in rows if r["plugin"] == "greeter"]
    assert (row["kind"], row["name"], row["status"]) == ("command", "greet", "ok")


def test_each_invocation_sees_the_plugins_installed_now(dists, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_DISABLE_PLUGIN_AUTOLOAD", "1")
    runner = CliRunner()
    assert runner.invoke(cli, ["greet", "x"]).exit_code == 2
    monkeypatch.delenv("VOCALIS_DISABLE_PLUGIN_AUTOLOAD")
    _use(monkeypatch, dists.install("vocalis-greeter", GREET_PLUGIN))
    assert runner.invoke(cli, ["greet", "x"]).output == "hello x\n"
