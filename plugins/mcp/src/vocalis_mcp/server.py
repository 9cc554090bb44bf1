"""MCP server connections as :class:`~vocalis.providers.tools.ToolSource`.

The MCP client session (and its transport) is entered and left by ONE
long-lived runner task owned by the source: anyio cancel scopes must be
exited by the task that entered them, so callers never touch the context
managers. Callers put requests on a queue; the runner serves each in its own
task of an anyio task group, so calls run in parallel.

When the connection dies (a stdio server process exits, an HTTP server goes
away), the call in flight raises :class:`~vocalis.tools.ToolError` naming the
server and the runner ends. The next call restarts the connection once; if
that restart fails, that call raises ``ToolError`` too, and the one after
tries again. A dead server never ends the voice session.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import anyio
from loguru import logger
from mcp import ClientSession, MCPError, types
from pydantic import Field, ValidationError

from vocalis.providers.tools import Tool, ToolSource
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis.tools.function import ToolArgumentsError, ToolError, parse_tool_arguments

_Request = tuple[Callable[[ClientSession], Any], "asyncio.Future[Any]"]


class MCPSettings(ProviderSettings):
    """Defaults of MCP tool sources (env prefix ``VOCALIS_TOOLS_MCP_``)."""

    model_config = provider_settings_config("tools", "mcp")

    session_timeout: float = Field(5.0, gt=0, description="Seconds one tool call may take.")
    startup_timeout: float = Field(20.0, gt=0, description="Seconds to connect and list the tools.")
    connection_timeout: float = Field(10.0, gt=0, description="HTTP connect timeout in seconds.")
    stream_read_timeout: float = Field(300.0, gt=0, description="HTTP stream read timeout in seconds.")
    command: str = Field("", description="Stdio server program when no executable_path is given.")
    args: list[str] = Field(default_factory=list, description="Its arguments (JSON list in the env).")
    url: str = Field("", description="HTTP server URL when no endpoint_url is given.")


@dataclass(eq=False)
class MCPTool:
    """One tool of an MCP server, callable by the LLM.

    Attributes:
        name: The tool name.
        description: What the tool does (from the server).
        parameters: The tool's input JSON schema.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    source: MCPServer = field(repr=False)
    _validator: Any = field(default=None, init=False, repr=False)

    async def invoke(self, arguments: str | Mapping[str, Any] | None, *, context: Any = None) -> Any:
        """Call the tool on the server.

        Args:
            arguments: JSON text or a mapping of the model's arguments.
            context: Unused (the call context of the session).

        Returns:
            The text output, or the structured content as JSON text.

        Raises:
            ToolArgumentsError: The arguments are not a JSON object or
                violate the tool's input schema (the server is not called).
            ToolError: The tool failed, timed out or the server is gone.
        """
        parsed = parse_tool_arguments(arguments, tool=self.name)
        self._check(parsed)
        return await self.source.call_tool(self.name, parsed)

    def _check(self, arguments: dict[str, Any]) -> None:
        """Validate against the server's input schema, so bad calls never reach it."""
        if self._validator is None:
            self._validator = _validator_for(self.name, self.parameters)
        if self._validator is False:
            return
        try:
            error = _best_match(self._validator.iter_errors(arguments))
        except RecursionError:
            raise ToolArgumentsError(f"Invalid arguments for tool {self.name!r}: nested too deeply") from None
        except Exception as exc:
            logger.debug("cannot check arguments of MCP tool {!r}: {!r}", self.name, exc)
            return
        if error is not None:
            where = ".".join(str(part) for part in error.absolute_path) or "arguments"
            raise ToolArgumentsError(
                f"Invalid arguments for tool {self.name!r}: {_cut(where)}: {_cut(error.message, 200)}"
            )


def _validator_for(tool: str, schema: dict[str, Any]) -> Any:
    """A JSON-schema validator for ``schema``, or False when the schema itself is invalid."""
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    try:
        cls = validator_for(schema)
        cls.check_schema(schema)
    except (SchemaError, TypeError) as exc:
        logger.warning("MCP tool {!r} has an invalid input schema; arguments go unchecked ({})", tool, _cut(str(exc)))
        return False
    return cls(schema)


def _best_match(errors: Any) -> Any:
    from jsonschema.exceptions import best_match as pick

    return pick(errors)


def _cut(text: str, limit: int = 60) -> str:
    """Text from a model or a server, cut short for an error message."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _innermost(exc: BaseException) -> BaseException:
    """The first real error inside anyio's task-group wrappers."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _result_output(result: types.CallToolResult) -> str:
    texts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            texts.append(block.text)
        else:
            # Images/audio/resources cannot be read by a text LLM; say what came back.
            kind = getattr(block, "type", type(block).__name__)
            mime = getattr(block, "mime_type", None)
            texts.append(f"[{kind} content{f' ({mime})' if mime else ''}]")
    text = "\n".join(texts)
    if result.is_error:
        raise ToolError(text or "the tool reported an error")
    if not any(isinstance(b, types.TextContent) for b in result.content) and result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False, default=str)
    return text


class MCPServer(ToolSource):
    """Base of the MCP tool sources: runner task, queue, restarts and filters.

    Args:
        allowed_tools: Only these tool names are offered (all when ``None``).
        denied_tools: These tool names are never offered.
        session_timeout: Seconds per tool call (settings default 5).
        settings: Ready settings.
        **overrides: Further settings fields.
    """

    name: ClassVar[str] = "mcp"
    Settings: ClassVar[type[ProviderSettings]] = MCPSettings
    settings: MCPSettings

    def __init__(
        self,
        *,
        allowed_tools: Sequence[str] | None = None,
        denied_tools: Sequence[str] = (),
        session_timeout: float | None = None,
        settings: MCPSettings | None = None,
        **overrides: Any,
    ) -> None:
        if session_timeout is not None:
            overrides["session_timeout"] = session_timeout
        super().__init__(settings=settings, **overrides)
        self.allowed_tools = None if allowed_tools is None else set(allowed_tools)
        self.denied_tools = set(denied_tools)
        self._queue: asyncio.Queue[_Request | None] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        self._tools: list[MCPTool] = []
        self._lock = asyncio.Lock()
        self._closed = False
        self._broken = False
        self.restarts = 0

    @property
    def server_name(self) -> str:
        """A short name of the server for errors and logs."""
        raise NotImplementedError

    def _redact(self, text: str) -> str:
        """``text`` (from a connection error) without credentials the server's address holds."""
        return text

    def _transport(self) -> AbstractAsyncContextManager[tuple[Any, Any]]:
        raise NotImplementedError

    # -- lifecycle ------------------------------------------------------------
    async def start(self) -> None:
        """Connect to the server and fetch its tools."""
        self._closed = False
        async with self._lock:
            await self._ensure_running()

    async def _ensure_running(self) -> None:
        if self._runner is not None and not self._runner.done() and not self._broken:
            return
        if self._runner is not None:
            await self._stop_runner()
            self.restarts += 1
            logger.warning("restarting MCP server {}", self.server_name)
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[list[types.Tool]] = loop.create_future()
        # Read the outcome even when nobody waits for it any more (a timed-out
        # start), so asyncio does not warn about an unretrieved exception.
        ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        # Each runner gets its own queue, so a dying runner never eats new requests.
        self._queue = asyncio.Queue()
        self._broken = False
        self._runner = loop.create_task(self._run(ready, self._queue), name=f"mcp-runner:{self.server_name}")
        try:
            listed = await asyncio.wait_for(asyncio.shield(ready), self.settings.startup_timeout)
        except BaseException as exc:
            # The server never got as far as reading requests: no graceful stop.
            runner, self._runner = self._runner, None
            if runner is not None:
                runner.cancel()
                await asyncio.gather(runner, return_exceptions=True)
            if isinstance(exc, asyncio.CancelledError):
                raise
            root = _innermost(exc)
            if isinstance(root, TimeoutError):
                message = f"no answer within {self.settings.startup_timeout:g} s"
            else:
                message = self._redact(f"{type(root).__name__}: {root}")
            raise self.error(f"could not start MCP server {self.server_name}: {message}") from exc
        self._tools = [
            MCPTool(t.name, t.description or "", dict(t.input_schema or {"type": "object"}), self)
            for t in listed
            if (self.allowed_tools is None or t.name in self.allowed_tools) and t.name not in self.denied_tools
        ]

    async def _run(self, ready: asyncio.Future[list[types.Tool]], queue: asyncio.Queue[_Request | None]) -> None:
        try:
            async with self._transport() as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                ready.set_result(list(listed.tools))
                async with anyio.create_task_group() as group:
                    while (request := await queue.get()) is not None:
                        group.start_soon(self._serve, session, request, queue)
                    group.cancel_scope.cancel()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else ConnectionError(str(exc)))
            if not isinstance(exc, Exception):
                raise
            logger.debug("MCP server {} connection ended: {}", self.server_name, self._redact(repr(exc)))
        finally:
            if not ready.done():
                ready.set_exception(ConnectionError("the connection closed"))
            if queue is self._queue:
                self._broken = True
            self._fail_pending(queue)

    async def _serve(self, session: ClientSession, request: _Request, queue: asyncio.Queue[_Request | None]) -> None:
        action, future = request
        try:
            value = await action(session)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            if not isinstance(exc, ToolError):
                # Anything but a tool-level error means the connection is unusable.
                if queue is self._queue:
                    self._broken = True
                queue.put_nowait(None)
        else:
            if not future.done():
                future.set_result(value)
        finally:
            # Cancelled by the runner shutting down (the connection died or aclose).
            if not future.done():
                future.set_exception(ToolError(f"MCP server {self.server_name} stopped during the call"))

    def _fail_pending(self, queue: asyncio.Queue[_Request | None]) -> None:
        while not queue.empty():
            request = queue.get_nowait()
            if request is not None and not request[1].done():
                request[1].set_exception(ToolError(f"MCP server {self.server_name} is not running"))

    async def _stop_runner(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        if not runner.done():
            self._queue.put_nowait(None)
            try:
                await asyncio.wait_for(asyncio.shield(runner), 5.0)
            except TimeoutError:
                runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)

    async def aclose(self) -> None:
        """Stop the runner task and the server process. Idempotent."""
        self._closed = True
        async with self._lock:
            await self._stop_runner()

    # -- tools ----------------------------------------------------------------
    async def list_tools(self) -> list[Tool]:
        """The server's tools after the allow/deny filters."""
        if self._runner is None and not self._closed:
            await self.start()
        return list(self._tools)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        """Call a tool through the runner task.

        Raises:
            ToolError: The tool failed, timed out, was filtered out or the server died.
        """
        if (self.allowed_tools is not None and name not in self.allowed_tools) or name in self.denied_tools:
            raise ToolError(f"tool {name!r} is not allowed on MCP server {self.server_name}")
        if self._closed:
            raise ToolError(f"MCP server {self.server_name} is closed")
        async with self._lock:
            try:
                await self._ensure_running()
            except Exception as exc:
                raise ToolError(str(exc)) from exc
        timeout = self.settings.session_timeout

        async def action(session: ClientSession) -> str:
            try:
                with anyio.fail_after(timeout):
                    result = await session.call_tool(name, arguments)
            except TimeoutError:
                raise ToolError(
                    f"tool {name!r} on MCP server {self.server_name} timed out after {timeout:g} s"
                ) from None
            except MCPError as exc:
                if exc.code != types.CONNECTION_CLOSED or exc.message != "Connection closed":
                    # A JSON-RPC error answer: the server is fine, the call is not.
                    raise ToolError(
                        f"MCP server {self.server_name} refused {name!r}: {_cut(exc.message, 300)} (code {exc.code})"
                    ) from None
                raise ConnectionError(
                    f"MCP server {self.server_name} crashed or disconnected during {name!r}: {self._redact(str(exc))}"
                ) from exc
            except ValidationError as exc:
                raise ToolError(
                    f"MCP server {self.server_name} sent a malformed result for {name!r} "
                    f"({exc.error_count()} schema errors, first: {_cut(str(exc.errors()[0]['msg']), 120)})"
                ) from None
            except Exception as exc:
                raise ConnectionError(
                    f"MCP server {self.server_name} crashed or disconnected during {name!r}: {self._redact(str(exc))}"
                ) from exc
            if not isinstance(result, types.CallToolResult):
                raise ToolError(f"tool {name!r} gave an unsupported result ({type(result).__name__})")
            return _result_output(result)

        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((action, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout + 5.0)
        except TimeoutError:
            raise ToolError(f"tool {name!r} on MCP server {self.server_name} timed out after {timeout:g} s") from None
        except ToolError:
            raise
        except ConnectionError as exc:
            raise ToolError(str(exc)) from exc
        except Exception as exc:
            raise ToolError(
                f"MCP server {self.server_name} failed: {type(exc).__name__}: {self._redact(str(exc))}"
            ) from exc
