"""Fake language providers: a scripted LLM, a scripted turn detector and a tool source."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from vocalis.audio import AudioFrame
from vocalis.chat import ChatContext, request_problems
from vocalis.providers.eou import EOU
from vocalis.providers.llm import LLM, ChatChunk, ToolCallRequest, ToolSpec, Usage
from vocalis.providers.tools import Tool, ToolSource
from vocalis.settings import ProviderSettings, provider_settings_config

_call_ids = itertools.count(1)


# -- LLM ---------------------------------------------------------------------
@dataclass
class FakeResponse:
    """One scripted LLM completion.

    Attributes:
        text: Streamed word by word.
        tool_calls: ``(name, arguments_json)`` pairs or full requests.
        ttft: Seconds before the first chunk.
        token_interval: Seconds between chunks.
        error: Raised after the text was streamed (a mid-stream failure).
    """

    text: str = ""
    tool_calls: list[tuple[str, str] | ToolCallRequest] = field(default_factory=list)
    ttft: float = 0.0
    token_interval: float = 0.0
    error: Exception | None = None


@dataclass
class LLMRequest:
    """What the fake LLM was asked: a snapshot of the context and tool names."""

    chat_ctx: ChatContext
    tools: list[str]


Script = FakeResponse | str | Callable[[ChatContext, Sequence[ToolSpec]], "FakeResponse | str"]


class FakeLLM(LLM):
    """Streams scripted responses in order; the last one repeats when the script runs out.

    Every request is checked as OpenAI and Anthropic would check it (each
    function call has exactly one output before any later message; see
    :func:`vocalis.chat.request_problems`). An invalid one is kept in
    :attr:`invalid_requests` and fails the chat with a non-recoverable
    :class:`~vocalis.providers.base.ProviderError`, as a real API would.

    Args:
        responses: ``FakeResponse`` objects, plain strings, or callables that
            build a response from the request.
    """

    name: ClassVar[str] = "fake"

    class Settings(ProviderSettings):
        model_config = provider_settings_config("llm", "fake")
        responses: list[str] = []

    def __init__(self, responses: Sequence[Script] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.responses = list(responses) or list(self.settings.responses)  # type: ignore[attr-defined]
        self.requests: list[LLMRequest] = []
        self.invalid_requests: list[list[str]] = []
        """The problems of each invalid request received (none, in a correct pipeline)."""
        self.cancelled = 0

    def _next(self, chat_ctx: ChatContext, tools: Sequence[ToolSpec]) -> FakeResponse:
        script: Script = (
            (self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]) if self.responses else ""
        )
        if callable(script):
            script = script(chat_ctx, tools)
        return FakeResponse(text=script) if isinstance(script, str) else script

    async def chat(
        self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = (), tool_choice: str | None = None
    ) -> AsyncIterator[ChatChunk]:
        self.requests.append(LLMRequest(chat_ctx.copy(), [t.name for t in tools]))
        problems = request_problems(chat_ctx)
        if problems:
            self.invalid_requests.append(problems)
            raise self.error(
                "invalid request (OpenAI and Anthropic reject it): " + "; ".join(problems), recoverable=False
            )
        response = self._next(chat_ctx, tools)
        try:
            if response.ttft:
                await asyncio.sleep(response.ttft)
            words = response.text.split(" ") if response.text else []
            for index, word in enumerate(words):
                if index and response.token_interval:
                    await asyncio.sleep(response.token_interval)
                yield ChatChunk(text=word if index == 0 else " " + word)
            if response.error is not None:
                raise response.error
            calls = [
                call
                if isinstance(call, ToolCallRequest)
                else ToolCallRequest(f"call_{next(_call_ids)}", call[0], call[1])
                for call in response.tool_calls
            ]
            yield ChatChunk(tool_calls=calls, usage=Usage(len(chat_ctx), len(words)))
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled += 1
            raise


# -- EOU ---------------------------------------------------------------------
class FakeEOU(EOU):
    """Returns scripted end-of-turn probabilities.

    Args:
        probability: A constant, or a function of the pending transcript.
        latency: Seconds each prediction takes.
    """

    name: ClassVar[str] = "fake"

    class Settings(ProviderSettings):
        model_config = provider_settings_config("eou", "fake")

    def __init__(
        self, probability: float | Callable[[str], float] = 1.0, *, latency: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.probability = probability
        self.latency = latency
        self.calls: list[str] = []

    async def predict(self, chat_ctx: ChatContext, *, audio: AudioFrame | None = None) -> float:
        message = chat_ctx.last_message("user")
        text = message.content if message else ""
        self.calls.append(text)
        if self.latency:
            await asyncio.sleep(self.latency)
        return self.probability(text) if callable(self.probability) else self.probability


# -- tools -------------------------------------------------------------------
class FakeToolSource(ToolSource):
    """A tool source offering given tools (e.g. ``@function_tool`` functions).

    Args:
        tools: What :meth:`list_tools` returns.
        fail_start: Raise this from :meth:`start`.
    """

    name: ClassVar[str] = "fake"

    class Settings(ProviderSettings):
        model_config = provider_settings_config("tools", "fake")

    def __init__(self, tools: Sequence[Tool] = (), *, fail_start: Exception | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tools = list(tools)
        self.fail_start = fail_start
        self.started = 0
        self.closed = 0

    async def start(self) -> None:
        self.started += 1
        if self.fail_start is not None:
            raise self.fail_start

    async def list_tools(self) -> list[Tool]:
        return list(self._tools)

    async def aclose(self) -> None:
        self.closed += 1
