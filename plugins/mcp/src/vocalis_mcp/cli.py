"""``vocalis mcp``: list and call the tools of an MCP server from the shell.

Examples::

    vocalis mcp tools -- python my_server.py --flag
    vocalis mcp tools --url http://127.0.0.1:8000/mcp --json
    vocalis mcp call add -a a=2 -a b=3 -- python my_server.py
    vocalis mcp call search --args '{"query": "cats"}' --url http://host/sse
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import click

from vocalis_mcp.server import MCPServer


def _server_options(func: Any) -> Any:
    options = [
        click.option("--url", help="Endpoint of an HTTP server (ending in /mcp: streamable HTTP; else SSE)."),
        click.option("--header", "headers", multiple=True, metavar="NAME:VALUE", help="HTTP header; repeatable."),
        click.option(
            "--env", "env", multiple=True, metavar="NAME=VALUE", help="Variable for the server process; repeatable."
        ),
        click.option("--cwd", type=click.Path(file_okay=False), help="Working directory of the server process."),
        click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for the server."),
        click.argument("command", nargs=-1, type=click.UNPROCESSED),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _pairs(values: Sequence[str], sep: str, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, found, rest = value.partition(sep)
        if not found or not key.strip():
            raise click.BadParameter(f"{value!r} is not {what}")
        out[key.strip()] = rest.strip() if sep == ":" else rest
    return out


def _make_server(
    url: str | None, headers: Sequence[str], env: Sequence[str], cwd: str | None, timeout: float, command: Sequence[str]
) -> MCPServer:
    if bool(url) == bool(command):
        raise click.UsageError(
            "name one server: --url URL, or -- COMMAND [ARGS...]"
            if not url and not command
            else "give --url URL or -- COMMAND [ARGS...], not both"
        )
    if url and (env or cwd):
        raise click.UsageError("--env and --cwd are for a server started with -- COMMAND, not --url")
    if command and headers:
        raise click.UsageError("--header is for --url servers")
    if url:
        from vocalis_mcp.http import MCPServerHTTP

        return MCPServerHTTP(
            url,
            request_headers=_pairs(headers, ":", "NAME:VALUE"),
            connection_timeout=timeout,
            session_timeout=timeout,
            startup_timeout=timeout,
            _env_file=None,
        )
    from vocalis_mcp.stdio import MCPServerStdio

    return MCPServerStdio(
        command[0],
        list(command[1:]),
        environment_vars=_pairs(env, "=", "NAME=VALUE") or None,
        working_directory=cwd,
        session_timeout=timeout,
        startup_timeout=timeout,
        _env_file=None,
    )


def _run(server: MCPServer, action: Any) -> Any:
    async def go() -> Any:
        try:
            return await action(server)
        finally:
            await server.aclose()

    try:
        return asyncio.run(go())
    except click.ClickException:
        raise
    except Exception as exc:
        raise click.ClickException(str(exc)) from exc


@click.group("mcp")
def mcp_command() -> None:
    """Inspect and call MCP servers (stdio command or HTTP URL)."""


@mcp_command.command("tools")
@_server_options
@click.option("--json", "as_json", is_flag=True, help="Print the tools as a JSON array.")
def tools_command(
    url: str | None,
    headers: tuple[str, ...],
    env: tuple[str, ...],
    cwd: str | None,
    timeout: float,
    command: tuple[str, ...],
    as_json: bool,
) -> None:
    """List a server's tools with their input schemas.

    Start a stdio server with `-- COMMAND ARGS...`, or reach an HTTP one with --url.
    """
    server = _make_server(url, headers, env, cwd, timeout, command)

    async def action(s: MCPServer) -> list[Any]:
        await s.start()
        return await s.list_tools()

    tools = _run(server, action)
    if as_json:
        payload = [{"name": t.name, "description": t.description, "inputSchema": t.parameters} for t in tools]
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    if not tools:
        click.echo("The server offers no tools.")
    for tool in tools:
        click.secho(tool.name, bold=True)
        if tool.description:
            click.echo(f"  {tool.description.strip()}")
        schema = json.dumps(tool.parameters, indent=2, ensure_ascii=False).replace("\n", "\n  ")
        click.echo(f"  input schema: {schema}\n")


@mcp_command.command("call")
@click.argument("tool")
@click.option("--args", "args_json", metavar="JSON", help="Arguments as a JSON object.")
@click.option(
    "-a",
    "--arg",
    "arg_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="One argument; VALUE is text for string parameters, else parsed as JSON when it can be (numbers, true, lists).",  # noqa: E501
)
@_server_options
def call_command(
    tool: str,
    args_json: str | None,
    arg_pairs: tuple[str, ...],
    url: str | None,
    headers: tuple[str, ...],
    env: tuple[str, ...],
    cwd: str | None,
    timeout: float,
    command: tuple[str, ...],
) -> None:
    """Call TOOL once and print its output.

    Give arguments with --args '{"name": value}' or repeated -a name=value.
    """
    server = _make_server(url, headers, env, cwd, timeout, command)

    async def action(s: MCPServer) -> str:
        await s.start()
        tools = {t.name: t for t in await s.list_tools()}
        if tool not in tools:
            raise click.ClickException(f"no tool {tool!r} on {s.server_name}; it has: {', '.join(tools) or 'none'}")
        return await s.call_tool(tool, _arguments(args_json, arg_pairs, tools[tool].parameters))

    click.echo(_run(server, action))


def _arguments(args_json: str | None, arg_pairs: Sequence[str], schema: dict[str, Any]) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    if args_json:
        try:
            parsed = json.loads(args_json)
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--args") from None
        if not isinstance(parsed, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--args")
        arguments.update(parsed)
    properties = schema.get("properties") or {}
    for name, value in _pairs(arg_pairs, "=", "NAME=VALUE").items():
        # A string parameter takes the text as it is ("-a zip=02134" stays a string).
        if (properties.get(name) or {}).get("type") == "string":
            arguments[name] = value
            continue
        try:
            arguments[name] = json.loads(value)
        except ValueError:
            arguments[name] = value
    return arguments
