"""The ``openai`` LLM provider: Chat Completions, streamed, with tools.

Speaks to OpenAI itself or any server with the same API (llama.cpp server,
vLLM, Ollama, Groq, OpenRouter, LM Studio...) through ``base_url``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from loguru import logger
from pydantic import Field

from vocalis.providers.base import ErrorKind
from vocalis.providers.llm import LLM, ChatChunk, ToolSpec, Usage
from vocalis.settings import provider_settings_config
from vocalis_openai.client import OpenAIClientMixin, OpenAISettings, provider_error
from vocalis_openai.tool_calls import ToolCallAssembler

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionChunk

    from vocalis.chat import ChatContext


class OpenAILLM(OpenAIClientMixin, LLM):
    """Chat through the Chat Completions API with streaming and tool calls.

    One HTTP connection pool per provider instance, opened on first use.
    Closing the reply's iterator (or cancelling its consumer) closes the HTTP
    response, which stops generation on servers that watch for it.
    """

    name: ClassVar[str] = "openai"
    sdk_modules: ClassVar[tuple[str, ...]] = ("openai.resources.chat.chat",)

    class Settings(OpenAISettings):
        """Settings, read from ``VOCALIS_LLM_OPENAI_*``.

        Attributes:
            model: The model name the server knows.
            temperature: Sampling temperature; None leaves the server's default.
            top_p: Nucleus sampling; None leaves the server's default.
            max_tokens: Most tokens in one reply; None leaves the server's default.
            max_tokens_field: Request field carrying ``max_tokens``.
                ``max_completion_tokens`` is what OpenAI's newer models
                require; many compatible servers only know ``max_tokens``.
                ``auto`` picks the former for OpenAI and the latter elsewhere.
            seed: Sampling seed, for reproducible replies where supported.
            parallel_tool_calls: Whether the model may call several tools at
                once; None leaves the server's default.
            developer_role: Role of DEVELOPER messages. ``system`` works
                everywhere; OpenAI's reasoning models prefer ``developer``.
            include_usage: Ask for token counts at the end of the stream.
            extra_body: Extra JSON fields for server-specific options (e.g.
                vLLM's ``top_k`` or Ollama's ``options``).
        """

        model_config = provider_settings_config("llm", "openai")

        model: str = "gpt-4.1-mini"
        temperature: float | None = Field(None, ge=0, le=2)
        top_p: float | None = Field(None, gt=0, le=1)
        max_tokens: int | None = Field(None, ge=1)
        max_tokens_field: Literal["auto", "max_tokens", "max_completion_tokens"] = "auto"
        seed: int | None = None
        parallel_tool_calls: bool | None = None
        developer_role: Literal["system", "developer"] = "system"
        include_usage: bool = True
        extra_body: dict[str, Any] = Field(default_factory=dict)

    settings: Settings

    async def chat(
        self,
        chat_ctx: ChatContext,
        *,
        tools: Sequence[ToolSpec] = (),
        tool_choice: str | None = None,
    ) -> AsyncIterator[ChatChunk]:
        """Stream a completion; tool calls arrive whole, on the last chunk.

        Raises:
            ProviderError: An empty context (``BAD_REQUEST``), an HTTP error
                (kind by status), a timeout before the reply (``TIMEOUT``) or
                inside it (``STALLED``), a failed or dropped connection
                (``CONNECTION``), a malformed reply (``PROTOCOL``) or an
                error object inside the stream (kind by its code or type).
        """
        messages = chat_ctx.to_openai(developer_role=self.settings.developer_role)
        if not messages:
            raise self.error(
                "the chat context is empty: nothing to answer",
                recoverable=False,
                kind=ErrorKind.BAD_REQUEST,
            )
        request = self._request(messages, tools, tool_choice)
        try:
            stream = await self.client.chat.completions.create(**request)
        except Exception as exc:
            raise provider_error(self, exc, started=False) from exc
        calls = ToolCallAssembler(self)
        usage: Usage | None = None
        finish_reason: str | None = None
        try:
            async for chunk in stream:
                text, finish = self._read(chunk, calls)
                finish_reason = finish or finish_reason
                if chunk.usage is not None:
                    usage = Usage(
                        prompt_tokens=chunk.usage.prompt_tokens or 0,
                        completion_tokens=chunk.usage.completion_tokens or 0,
                    )
                if text:
                    yield ChatChunk(text=text)
        except Exception as exc:
            raise provider_error(self, exc, started=True) from exc
        finally:
            # Runs on normal end, on error, and when the reader stops early
            # (aclose/cancel): the HTTP response must not outlive the reply.
            await stream.close()
        if finish_reason == "length":
            logger.warning("{}: the reply hit max_tokens and was cut short", self.label)
        elif finish_reason == "content_filter":
            logger.warning("{}: the server's content filter stopped the reply", self.label)
        yield ChatChunk(tool_calls=calls.finish(), usage=usage)

    def _read(self, chunk: ChatCompletionChunk, calls: ToolCallAssembler) -> tuple[str, str | None]:
        text = ""
        finish: str | None = None
        for choice in chunk.choices:
            if choice.index not in (0, None):
                continue  # n > 1 is never requested; ignore stray choices
            delta = choice.delta
            if delta is not None:
                text += delta.content or ""
                for call in delta.tool_calls or ():
                    calls.add(call)
            finish = choice.finish_reason or finish
        return text, finish

    def _request(
        self, messages: list[dict[str, Any]], tools: Sequence[ToolSpec], tool_choice: str | None
    ) -> dict[str, Any]:
        s = self.settings
        request: dict[str, Any] = {"model": s.model, "messages": messages, "stream": True}
        if s.include_usage:
            request["stream_options"] = {"include_usage": True}
        if tools:
            request["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters or {"type": "object", "properties": {}},
                    },
                }
                for t in tools
            ]
            if tool_choice:
                request["tool_choice"] = tool_choice
            if s.parallel_tool_calls is not None:
                request["parallel_tool_calls"] = s.parallel_tool_calls
        for field in ("temperature", "top_p", "seed"):
            if (value := getattr(s, field)) is not None:
                request[field] = value
        if s.max_tokens is not None:
            request[self._max_tokens_field()] = s.max_tokens
        if s.extra_body:
            request["extra_body"] = s.extra_body
        return request

    def _max_tokens_field(self) -> str:
        if self.settings.max_tokens_field != "auto":
            return self.settings.max_tokens_field
        host = str(self.client.base_url.host)
        return "max_completion_tokens" if host.endswith("openai.com") else "max_tokens"
