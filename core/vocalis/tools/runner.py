"""Running the LLM's tool calls: in parallel, bounded, exactly one output each.

Every call the model makes is recorded in the chat context as a
``FunctionCall`` and gets exactly one ``FunctionCallOutput``: the result, or
an error the model can read (bad arguments, unknown tool, the tool raised or
timed out, the session closed). A call runs in its own task, so an
interruption of the agent's speech does not cancel a tool that already
started; its output is recorded when it finishes.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from loguru import logger

from vocalis.chat import FunctionCall
from vocalis.providers.llm import ToolCallRequest
from vocalis.session_api import AgentAPI
from vocalis.tools.function import ToolArgumentsError, ToolContext, ToolError, _short

if TYPE_CHECKING:
    from vocalis.chat import ChatContext
    from vocalis.providers.tools import Tool, ToolSource
    from vocalis.session_api import SessionAPI


class ToolOwner(AgentAPI, Protocol):
    """An agent, as the runner sees it: where its tools come from, and what
    its tools see of it (:class:`~vocalis.session_api.AgentAPI`).

    :class:`vocalis.Agent` satisfies it.
    """

    @property
    def tools(self) -> Sequence[Tool]:
        """The agent's own function tools."""
        ...

    @property
    def mcp_servers(self) -> Sequence[ToolSource]:
        """Tool sources whose tools are offered next to the function tools."""
        ...


class ToolHost(Protocol):
    """What a :class:`ToolRunner` needs of its owner (the session).

    The host also decides what a tool's return value hands the conversation
    over to, so the tools layer knows nothing of agents or sessions.
    """

    @property
    def session(self) -> SessionAPI:
        """What tools see as :attr:`vocalis.ToolContext.session`."""
        ...

    def emit(self, event: str, *args: Any) -> None:
        """Emit a session event (``function_call``)."""
        ...

    def report_error(self, source: str, error: BaseException | str, *, recoverable: bool = True) -> None:
        """Report a failure; the session keeps running."""
        ...

    def hand_over(self, value: object) -> ToolOwner | None:
        """If ``value`` is an agent, switch to it once the current utterance
        ends and return it; otherwise return None."""
        ...


@dataclass(slots=True)
class ToolResult:
    """The outcome of one call.

    Attributes:
        call_id: The model's call id.
        name: The tool name.
        output: Text given back to the model.
        is_error: Whether the output describes a failure.
        handoff: An agent the tool handed the conversation to.
    """

    call_id: str
    name: str
    output: str
    is_error: bool = False
    handoff: ToolOwner | None = None
    arguments: str = ""
    started_at: float = 0.0
    duration: float = 0.0


class ToolRunner:
    """Executes tool calls for one session.

    Args:
        host: The owning session's side (for events, errors and handoffs).
        timeout: Seconds one call may run.
        max_steps: LLM rounds with tool calls per reply.
        max_parallel: Calls that run at the same time in this session (calls
            of an interrupted reply that still run count too); more wait.
        max_calls_per_turn: Calls per reply; further calls get an error output.
        max_output_chars: Longer outputs and error messages are cut (the
            model is told so).
    """

    def __init__(
        self,
        host: ToolHost,
        *,
        timeout: float = 10.0,
        max_steps: int = 5,
        max_parallel: int = 8,
        max_calls_per_turn: int = 16,
        max_output_chars: int = 16_000,
    ) -> None:
        self.host = host
        self.timeout = timeout
        self.max_steps = max_steps
        self.max_parallel = max_parallel
        self.max_calls_per_turn = max_calls_per_turn
        self.max_output_chars = max_output_chars
        self._source_tools: dict[int, list[Tool]] = {}
        self._started_sources: list[ToolSource] = []
        self._running: set[asyncio.Task[ToolResult]] = set()
        self._slots: asyncio.Semaphore | None = None  # one per session, made on first use
        self._warned: set[str] = set()

    # -- tool sources -------------------------------------------------------
    async def start_sources(self, agent: ToolOwner) -> None:
        """Start the agent's tool sources and fetch their tools; failures are reported."""
        for source in agent.mcp_servers:
            if id(source) in self._source_tools:
                continue
            try:
                await source.start()
                self._started_sources.append(source)
                self._source_tools[id(source)] = self._check_tools(source, await source.list_tools())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._source_tools[id(source)] = []
                self.host.report_error(source.label, exc)

    def _check_tools(self, source: ToolSource, listed: Any) -> list[Tool]:
        """Keep the usable tools a source listed; report the others."""
        from vocalis.tools.function import as_function_tool

        usable: list[Tool] = []
        for tool in listed or []:
            if not all(hasattr(tool, attr) for attr in ("name", "description", "parameters", "invoke")):
                try:
                    tool = as_function_tool(tool)
                except (TypeError, ValueError) as exc:
                    self.host.report_error(source.label, f"listed an unusable tool {tool!r}: {exc}")
                    continue
            usable.append(tool)
        return usable

    def tools_for(self, agent: ToolOwner) -> dict[str, Tool]:
        """Function tools and tool-source tools by name (function tools win)."""
        tools: dict[str, Tool] = {}
        for source in agent.mcp_servers:
            for tool in self._source_tools.get(id(source), []):
                if tool.name in tools:
                    self._warn_shadowed(tool.name, source.label)
                    continue
                tools[tool.name] = tool
        for tool in agent.tools:
            if tool.name in tools:
                self._warn_shadowed(tool.name, "the agent's own tool")
            tools[tool.name] = tool
        return tools

    def _warn_shadowed(self, name: str, winner: str) -> None:
        if name not in self._warned:
            self._warned.add(name)
            logger.warning("two tools are named {!r}; only one is offered ({} wins)", name, winner)

    # -- calls --------------------------------------------------------------
    async def run(
        self,
        calls: Sequence[ToolCallRequest],
        agent: ToolOwner,
        chat_ctx: ChatContext,
        *,
        calls_so_far: int = 0,
        refuse: str | None = None,
    ) -> list[ToolResult]:
        """Run one round of calls and record them in ``chat_ctx``.

        Args:
            calls: The model's calls.
            agent: The agent whose tools are called.
            chat_ctx: Where calls and outputs are recorded.
            calls_so_far: Calls already made this turn (for the per-turn limit).
            refuse: Record each call with this error instead of running it.

        Returns:
            Results in the order of ``calls``.
        """
        loop = asyncio.get_running_loop()
        tools = self.tools_for(agent)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_parallel)
        semaphore = self._slots
        tasks: list[asyncio.Task[ToolResult]] = []
        # Outputs are matched to calls by id: a repeated (or missing) id gets a fresh one.
        taken = {item.call_id for item in chat_ctx.items if isinstance(item, FunctionCall)}
        for index, call in enumerate(calls):
            call_id = call.call_id
            if not call_id or not isinstance(call_id, str) or call_id in taken:
                if call_id:
                    logger.warning("the model reused tool call id {}; renamed", _short(call_id))
                call_id = f"call_{uuid.uuid4().hex[:12]}"
            taken.add(call_id)
            chat_ctx.add_function_call(call_id, call.name, call.arguments, created_at=loop.time())
            if refuse is None and calls_so_far + index >= self.max_calls_per_turn:
                refusal: str | None = f"too many tool calls in one turn (limit {self.max_calls_per_turn})"
            else:
                refusal = refuse
            task = loop.create_task(
                self._run_one(call_id, call, tools.get(call.name), agent, chat_ctx, semaphore, refusal)
            )
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            tasks.append(task)
        # Shielded: interrupting the reply must not cancel calls that started.
        return list(await asyncio.shield(asyncio.gather(*tasks)))

    async def _run_one(
        self,
        call_id: str,
        call: ToolCallRequest,
        tool: Tool | None,
        agent: ToolOwner,
        chat_ctx: ChatContext,
        semaphore: asyncio.Semaphore,
        refusal: str | None,
    ) -> ToolResult:
        result = ToolResult(call_id, call.name, "", arguments=call.arguments)
        result.started_at = asyncio.get_running_loop().time()
        try:
            if refusal is not None:
                raise ToolError(refusal)
            if tool is None:
                known = ", ".join(sorted(self.tools_for(agent))) or "none"
                raise ToolError(f"unknown tool {_short(call.name)} (available: {known})")
            context = ToolContext(call_id=call_id, tool_name=call.name, session=self.host.session, agent=agent)
            async with semaphore:
                value = await asyncio.wait_for(tool.invoke(call.arguments, context=context), timeout=self.timeout)
            self._set_output(result, value)
        except ToolArgumentsError as exc:
            result.output, result.is_error = f"invalid arguments: {exc}", True
        except ToolError as exc:
            result.output, result.is_error = str(exc), True
        except TimeoutError:
            result.output, result.is_error = f"tool {call.name!r} timed out after {self.timeout:g} s", True
            self.host.report_error(f"tool:{call.name}", result.output)
        except asyncio.CancelledError:
            result.output, result.is_error = f"tool {call.name!r} was cancelled", True
            self._record(result, chat_ctx)
            raise
        except Exception as exc:
            result.output, result.is_error = f"tool {call.name!r} failed: {type(exc).__name__}: {exc}", True
            self.host.report_error(f"tool:{call.name}", exc)
        self._record(result, chat_ctx)
        return result

    def _set_output(self, result: ToolResult, value: Any) -> None:
        target = self.host.hand_over(value)
        if target is not None:
            result.handoff = target
            result.output = f"Handing the conversation over to {target.name}."
            return
        if isinstance(value, tuple) and value:
            target = self.host.hand_over(value[0])
            if target is not None:
                result.handoff = target
                value = value[1] if len(value) > 1 else f"Handing over to {target.name}."
        if value is None:
            text = "done"
        elif isinstance(value, str):
            text = value
        else:
            try:
                text = json.dumps(value, ensure_ascii=False, default=str)
            except (TypeError, ValueError):
                text = str(value)
        result.output = text

    def _record(self, result: ToolResult, chat_ctx: ChatContext) -> None:
        if len(result.output) > self.max_output_chars:
            # Before the context, the event and the LLM see it: a tool (or its error) may return megabytes.
            cut = self.max_output_chars
            result.output = result.output[:cut] + f"… [output cut at {cut} characters]"
        result.duration = round(asyncio.get_running_loop().time() - result.started_at, 6)
        chat_ctx.add_function_output(
            result.call_id,
            result.name,
            result.output,
            is_error=result.is_error,
            created_at=asyncio.get_running_loop().time(),
        )
        logger.debug("tool {} -> {}{}", result.name, "error: " if result.is_error else "", result.output[:200])
        self.host.emit(
            "function_call",
            {
                "call_id": result.call_id,
                "name": result.name,
                "arguments": result.arguments,
                "output": result.output,
                "is_error": result.is_error,
            },
        )

    @property
    def running(self) -> int:
        """Calls still running (also after an interruption)."""
        return len(self._running)

    async def aclose(self) -> None:
        """Cancel running calls (each still records its one output) and close sources."""
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        for source in self._started_sources:
            try:
                await source.aclose()
            except Exception as exc:
                self.host.report_error(source.label, exc)
        self._started_sources.clear()
        self._source_tools.clear()
