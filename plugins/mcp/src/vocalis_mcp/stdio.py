"""MCP servers run as child processes, spoken to over stdin/stdout."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from vocalis_mcp.server import MCPServer


class MCPServerStdio(MCPServer):
    """An MCP server run as a child process, spoken to over stdin/stdout.

    Args:
        executable_path: The program to run (e.g. ``"python"``).
        process_arguments: Its arguments.
        environment_vars: Extra environment variables for the process.
        working_directory: The process's working directory.
        session_timeout: Seconds per tool call.
        **kwargs: ``allowed_tools``, ``denied_tools``, ``settings`` or settings fields.
    """

    def __init__(
        self,
        executable_path: str | None = None,
        process_arguments: Sequence[str] | None = None,
        environment_vars: Mapping[str, str] | None = None,
        working_directory: str | os.PathLike[str] | None = None,
        session_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(session_timeout=session_timeout, **kwargs)
        # Built from the registry/env, the settings name the server.
        self.executable_path = executable_path or self.settings.command
        self.process_arguments = list(self.settings.args if process_arguments is None else process_arguments)
        self.environment_vars = dict(environment_vars or {})
        self.working_directory = working_directory

    @property
    def server_name(self) -> str:
        """The executable and its first argument."""
        return " ".join(os.path.basename(part) for part in [self.executable_path, *self.process_arguments[:1]])

    def _transport(self) -> AbstractAsyncContextManager[tuple[Any, Any]]:
        if not self.executable_path:
            raise self.error("no executable_path given (or VOCALIS_TOOLS_MCP_COMMAND)")
        from mcp.client.stdio import StdioServerParameters, stdio_client

        # The server inherits our environment (PATH, venv) plus the extra variables.
        params = StdioServerParameters(
            command=self.executable_path,
            args=self.process_arguments,
            env={**os.environ, **self.environment_vars},
            # The SDK takes ``str | Path`` (a pydantic field): any other os.PathLike
            # would fail its validation, so the path goes as a string.
            cwd=None if self.working_directory is None else os.fspath(self.working_directory),
            # Stray non-UTF-8 bytes on stdout must not kill the reader (and
            # with it every later call): they become U+FFFD, and the line is
            # dropped as invalid JSON-RPC.
            encoding_error_handler="replace",
        )
        return stdio_client(params)
