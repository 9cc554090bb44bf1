"""The ``google`` LLM provider: Gemini over the REST API, streamed.

``POST {base_url}/{api_version}/models/{model}:streamGenerateContent?alt=sse``
with the key in ``x-goog-api-key``. One aiohttp session per event loop keeps
connections alive between replies (a TLS handshake saved per turn); it is
closed by :meth:`GeminiLLM.aclose`, or when its loop shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import aiohttp
from loguru import logger
from pydantic import Field, model_validator

from vocalis.chat import ChatMessage
from vocalis.chat.formats import JSONObject
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.llm import LLM, ChatChunk, ToolSpec
from vocalis.providers.redact import redact
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis_google.common import (
    GoogleSettings,
    auth_headers,
    has_credentials,
    missing_key_error,
    one_thinking_setting,
    secrets_of,
)
from vocalis_google.contents import CallMemory, function_declarations, to_contents
from vocalis_google.errors import api_error, http_error, parse_error, parse_error_text, transport_error
from vocalis_google.http import ClientHolder
from vocalis_google.stream import PromptBlocked, SSEParser, StreamAssembler

if TYPE_CHECKING:
    from vocalis.chat import ChatContext

DEFAULT_MODEL = "gemini-2.5-flash"
_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
_CONNECT_TIMEOUT = 5.0  # an unreachable host fails fast, so a fallback can take over
_MAX_WAIT = 5.0  # the longest wait before a retry a voice turn can afford


class GeminiLLM(LLM):
    """Chat with Gemini through ``streamGenerateContent`` (server-sent events).

    Text is yielded as it streams in, each tool call as soon as its part
    arrives (Gemini sends calls whole), and the last chunk carries the token
    usage. Closing a chat's iterator, or cancelling its reader, drops the
    HTTP connection at once, which ends the generation server-side.
    """

    name: ClassVar[str] = "google"

    class Settings(GoogleSettings):
        """Settings, read from ``VOCALIS_LLM_GOOGLE_*``.

        Attributes:
            model: The Gemini model (``gemini-2.5-flash``, ``gemini-2.5-flash-lite``...).
            max_output_tokens: Most tokens one reply may have (thinking included).
            temperature: Sampling temperature (0 to 2); None sends none.
            top_p: Nucleus sampling; None sends none.
            thinking_budget: Thinking tokens for 2.5 models (0 turns thinking
                off on Flash, the fastest first token; -1 lets the model
                decide); None sends none.
            thinking_level: ``minimal``/``low``/``medium``/``high`` for
                Gemini 3 models; None sends none.
            max_retries: Retries after a connection failure, 429 or 5xx, made
                before any of the reply arrived.
            thought_signature_fallback: Give calls that have no thought
                signature of their own (another model's, an older session's)
                the placeholder Google documents, which Gemini 3 accepts.
        """

        model_config = provider_settings_config("llm", "google")

        model: str = DEFAULT_MODEL
        max_output_tokens: int | None = Field(1024, ge=1)
        temperature: float | None = Field(None, ge=0.0, le=2.0)
        top_p: float | None = Field(None, ge=0.0, le=1.0)
        thinking_budget: int | None = Field(None, ge=-1)
        thinking_level: Literal["minimal", "low", "medium", "high"] | None = None
        max_retries: int = Field(1, ge=0, le=10)
        thought_signature_fallback: bool = True

        _one_thinking_setting = model_validator(mode="after")(one_thinking_setting)

    settings: Settings

    def __init__(self, *, settings: ProviderSettings | None = None, **overrides: Any) -> None:
        super().__init__(settings=settings, **overrides)
        self._http = ClientHolder()
        self._calls = CallMemory()
        self._responses: set[aiohttp.ClientResponse] = set()

    def error(self, message: str, *, recoverable: bool = True, kind: ErrorKind = ErrorKind.UNKNOWN) -> ProviderError:
        """Build a :class:`ProviderError` whose message has no credential in it.

        Messages quote what the server said, and a gateway may echo the key.
        """
        return super().error(redact(message, secrets_of(self)), recoverable=recoverable, kind=kind)

    @property
    def url(self) -> str:
        """The streaming endpoint of the configured model."""
        s = self.settings
        model = s.model if "/" in s.model else f"models/{s.model}"
        return f"{s.base_url}/{s.api_version}/{model}:streamGenerateContent?alt=sse"

    async def prewarm(self) -> None:
        """Make the HTTP session (and the TLS context) ahead of the first chat."""
        await self._http.get(self.settings.base_url)

    async def aclose(self) -> None:
        """End the chats in flight and close the HTTP session. Idempotent."""
        responses, self._responses = list(self._responses), set()
        for response in responses:
            response.close()
        await self._http.aclose()

    def build_request(
        self, chat_ctx: ChatContext, tools: Sequence[ToolSpec] = (), tool_choice: str | None = None
    ) -> JSONObject:
        """The JSON body of a ``streamGenerateContent`` request.

        Raises:
            ProviderError: The conversation is empty or ``tool_choice`` is
                unknown (``BAD_REQUEST``, not recoverable).
        """
        s = self.settings
        if not any(not isinstance(i, ChatMessage) or i.content.strip() for i in chat_ctx.items):
            raise self.error(
                "the conversation is empty: give at least one message", recoverable=False, kind=ErrorKind.BAD_REQUEST
            )
        system, contents = to_contents(
            chat_ctx.items, memory=self._calls, signature_fallback=s.thought_signature_fallback
        )
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        choice = tool_choice or "auto"
        if tools:
            body["tools"] = [{"functionDeclarations": function_declarations(tools)}]
            if choice in _MODES:
                body["toolConfig"] = {"functionCallingConfig": {"mode": _MODES[choice]}}
            elif any(tool.name == choice for tool in tools):
                body["toolConfig"] = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice]}}
            else:
                raise self.error(f"unknown tool_choice {tool_choice!r}", recoverable=False, kind=ErrorKind.BAD_REQUEST)
        elif choice not in ("auto", "none"):
            raise self.error(f"tool_choice {tool_choice!r} needs tools", recoverable=False, kind=ErrorKind.BAD_REQUEST)
        config: dict[str, Any] = {}
        optional = {"maxOutputTokens": s.max_output_tokens, "temperature": s.temperature, "topP": s.top_p}
        config.update({key: value for key, value in optional.items() if value is not None})
        thinking = {"thinkingBudget": s.thinking_budget, "thinkingLevel": s.thinking_level}
        if any(value is not None for value in thinking.values()):
            config["thinkingConfig"] = {key: value for key, value in thinking.items() if value is not None}
        if config:
            body["generationConfig"] = config
        return body

    async def chat(
        self,
        chat_ctx: ChatContext,
        *,
        tools: Sequence[ToolSpec] = (),
        tool_choice: str | None = None,
    ) -> AsyncIterator[ChatChunk]:
        """Stream a reply: text as it arrives, each tool call as it comes,
        then a last chunk with the token usage.

        Raises:
            ProviderError: No key (``AUTH``); an empty conversation or a bad
                ``tool_choice`` (``BAD_REQUEST``); an HTTP error or an error
                object in the stream (kind by the API's status: recoverable
                for 429, 5xx and timeouts, not for 400, 401, 403 and 404); a
                refused prompt (``BAD_REQUEST``); a failed or dropped
                connection (``CONNECTION``), a stall (``STALLED``), a
                malformed or truncated stream (``PROTOCOL``), recoverable.
        """
        if not has_credentials(self.settings):
            raise missing_key_error(self)
        body = self.build_request(chat_ctx, tools, tool_choice)
        logger.debug(
            "{}: {} items, {} tools, model {}", self.label, len(chat_ctx.items), len(tools), self.settings.model
        )
        response = await self._post(json.dumps(body))
        self._responses.add(response)
        finished = False
        try:
            async with contextlib.aclosing(self._read(response)) as chunks:
                async for chunk in chunks:
                    yield chunk
            finished = True
        finally:
            # On completion the connection goes back to the pool; on an error,
            # aclose() or a cancellation it is dropped, which stops the
            # generation server-side.
            self._responses.discard(response)
            if finished:
                response.release()
            else:
                response.close()

    async def _post(self, data: str) -> aiohttp.ClientResponse:
        s = self.settings
        headers = {**auth_headers(s), "Content-Type": "application/json", "Accept": "text/event-stream"}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(s.timeout, _CONNECT_TIMEOUT), sock_read=s.timeout)
        attempt = 0
        while True:
            client = await self._http.get(s.base_url)
            try:
                response = await client.post(self.url, data=data, headers=headers, timeout=timeout)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                failure = transport_error(self, exc, started=False, timeout=s.timeout)
                delay = 0.0
            else:
                if response.status < 400:
                    return response
                try:
                    text = await response.text(errors="replace")
                except (aiohttp.ClientError, OSError, TimeoutError):
                    text = ""
                finally:
                    response.release()
                failure = http_error(self, response.status, text)
                api = parse_error_text(text)
                asked = api.retry_delay if api is not None else None
                delay = asked if asked is not None else _retry_after(response.headers.get("Retry-After"))
            # A wait longer than a voice turn allows (a quota resetting) is not worth it:
            # failing now lets a fallback take over.
            if not failure.recoverable or attempt >= s.max_retries or delay > _MAX_WAIT:
                raise failure
            attempt += 1
            logger.debug("{}: retrying after {}", self.label, failure)
            await asyncio.sleep(max(delay, 0.25 * 2**attempt))

    async def _read(self, response: aiohttp.ClientResponse) -> AsyncGenerator[ChatChunk, None]:
        s = self.settings
        parser = SSEParser()
        assembler = StreamAssembler(self._calls)
        try:
            if response.content_type == "application/json":
                # A gateway that dropped ``alt=sse`` answers with the whole reply at once.
                for message in _json_replies(await response.text()):
                    if (chunk := self._message(message, assembler)) is not None:
                        yield chunk
            else:
                async for data in response.content.iter_any():
                    for event in parser.feed(data):
                        if (chunk := self._event(event, assembler)) is not None:
                            yield chunk
                for event in parser.close():
                    if (chunk := self._event(event, assembler)) is not None:
                        yield chunk
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            if response.closed and response not in self._responses:
                return  # stopped by aclose() of the provider
            if not assembler.finished:
                raise transport_error(self, exc, started=True, timeout=s.timeout) from exc
        if not assembler.finished:
            if response not in self._responses:
                return
            raise self.error("the stream ended before a finish reason", kind=ErrorKind.PROTOCOL)
        if (failure := assembler.failure) is not None:
            reason, retry = failure
            kind = ErrorKind.PROTOCOL if retry else ErrorKind.BAD_REQUEST
            raise self.error(f"the reply was stopped with nothing said: {reason}", recoverable=retry, kind=kind)
        yield ChatChunk(usage=assembler.usage)

    def _event(self, data: str, assembler: StreamAssembler) -> ChatChunk | None:
        if data.strip() in ("", "[DONE]"):
            return None  # some gateways end a stream with an OpenAI-style marker
        try:
            message = json.loads(data)
        except ValueError as exc:
            raise self.error(f"malformed stream event: {exc}", kind=ErrorKind.PROTOCOL) from None
        return self._message(message, assembler)

    def _message(self, message: object, assembler: StreamAssembler) -> ChatChunk | None:
        if not isinstance(message, dict):
            raise self.error("malformed stream event: not an object", kind=ErrorKind.PROTOCOL)
        failure = parse_error(message)
        if failure is not None:
            raise api_error(self, failure, where="error mid-stream")
        try:
            return assembler.feed(message)
        except PromptBlocked as exc:
            raise self.error(f"the prompt was blocked: {exc}", recoverable=False, kind=ErrorKind.BAD_REQUEST) from None


def _retry_after(value: str | None) -> float:
    """Seconds a ``Retry-After`` header asks for (0 when absent or an HTTP date)."""
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def _json_replies(body: str) -> list[object]:
    """The response objects of a whole JSON body: an array of them, or one (an error)."""
    value = json.loads(body)
    return value if isinstance(value, list) else [value]
