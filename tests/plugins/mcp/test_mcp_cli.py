"""``vocalis mcp tools`` and ``vocalis mcp call`` against real MCP servers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_mcp_http import http_port  # noqa: F401 - a fixture
from test_mcp_stdio import SERVER

from vocalis.cli.main import cli


@pytest.fixture
def stdio_command(tmp_path: Path) -> list[str]:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    return [sys.executable, str(script), str(tmp_path / "pids.txt")]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_the_plugin_adds_the_command_to_help() -> None:
    code, out = invoke("--help")
    assert code == 0 and "mcp" in out.split("Commands:")[1]


def test_tools_lists_names_descriptions_and_schemas(stdio_command: list[str]) -> None:
    code, out = invoke("mcp", "tools", "--", *stdio_command)
    assert code == 0, out
    assert "add\n  Add two integers." in out
    assert '"a": {' in out and '"required": [' in out


def test_tools_as_json(stdio_command: list[str]) -> None:
    code, out = invoke("mcp", "tools", "--json", "--", *stdio_command)
    tools = {t["name"]: t for t in json.loads(out)}
    assert code == 0 and {"add", "fail", "info"} <= set(tools)
    assert tools["add"]["inputSchema"]["properties"]["a"]["type"] == "integer"


def test_call_with_pairs_and_with_json(stdio_command: list[str]) -> None:
    assert invoke("mcp", "call", "add", "-a", "a=2", "-a", "b=40", "--", *stdio_command) == (0, "sum is 42\n")
    code, out = invoke("mcp", "call", "add", "--args", '{"a": 1, "b": 2}', "--", *stdio_command)
    assert (code, out) == (0, "sum is 3\n")
    code, out = invoke("mcp", "call", "info", "--", *stdio_command)
    assert code == 0 and json.loads(out) == {"name": "vocalis", "stars": 5}


def test_call_errors_are_clear(stdio_command: list[str]) -> None:
    code, out = invoke("mcp", "call", "nope", "--", *stdio_command)
    assert code == 1 and "no tool 'nope'" in out and "add" in out
    code, out = invoke("mcp", "call", "fail", "-a", "reason=x", "--", *stdio_command)
    assert code == 1 and "broken: x" in out
    code, out = invoke("mcp", "call", "add", "-a", "a=1", "--", *stdio_command)  # b missing
    assert code == 1 and "b" in out
    code, out = invoke("mcp", "call", "add", "--args", "[1]", "--", *stdio_command)
    assert code == 2 and "JSON object" in out


def test_a_server_that_does_not_start_is_reported() -> None:
    code, out = invoke("mcp", "tools", "--timeout", "5", "--", "/nonexistent/server")
    assert code == 1 and "Error" in out and "server" in out


def test_needs_exactly_one_server() -> None:
    code, out = invoke("mcp", "tools")
    assert code == 2 and "name one server" in out


def test_http_server(http_port: int) -> None:  # noqa: F811
    url = f"http://127.0.0.1:{http_port}/mcp"
    code, out = invoke("mcp", "tools", "--url", url)
    assert code == 0 and "greet" in out
    code, out = invoke("mcp", "call", "greet", "-a", "name=Ada", "--url", url)
    assert code == 0 and "Ada" in out


# A fresh interpreter imports every installed plugin (the SDKs, mcp's types)
# before the command runs: seconds of CPU, and a minute or more of wall time
# on a loaded machine. The bounds below only catch hangs.
CLI_SECONDS = 300


@pytest.mark.timeout(CLI_SECONDS + 60)
def test_installed_console_script(stdio_command: list[str]) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "vocalis.cli.main",
            "mcp",
            "call",
            "add",
            "-a",
            "a=5",
            "-a",
            "b=6",
            "--",
            *stdio_command,
        ],
        capture_output=True,
        text=True,
        timeout=CLI_SECONDS,
        check=True,
    ).stdout
    assert out == "sum is 11\n"


@pytest.mark.timeout(CLI_SECONDS + 60)
def test_a_silent_server_times_out_quickly_and_cleanly() -> None:
    # The server would stay silent for 10 minutes: the command must give up
    # after its 2 s --timeout and stop it, not wait for it (that would pass
    # CLI_SECONDS and fail).
    result = subprocess.run(
        [sys.executable, "-m", "vocalis.cli.main", "mcp", "tools", "--timeout", "2", "--", "sleep", "600"],
        capture_output=True,
        text=True,
        timeout=CLI_SECONDS,
    )
    assert result.returncode == 1 and "no answer within 2 s" in result.stderr, result.stderr
    assert "never retrieved" not in result.stderr


def test_string_parameters_keep_their_text(stdio_command: list[str]) -> None:
    code, out = invoke("mcp", "call", "fail", "-a", "reason=123", "--", *stdio_command)
    assert code == 1 and "broken: 123" in out


def test_options_that_do_not_fit_the_server_are_refused(stdio_command: list[str]) -> None:
    code, out = invoke("mcp", "tools", "--url", "http://127.0.0.1:1/mcp", "--env", "A=1")
    assert code == 2 and "--env and --cwd" in out
    code, out = invoke("mcp", "tools", "--header", "A: b", "--", *stdio_command)
    assert code == 2 and "--header is for --url" in out
