"""The ``anthropic`` LLM provider: Claude over the Messages API, streamed."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import os
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import anthropic
from loguru import logger
from pydantic import Field, SecretStr

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.llm import LLM, ChatChunk, ToolSpec
from vocalis.providers.redact import redact
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis_anthropic.errors import credentials_error, provider_error, secrets_of
from vocalis_anthropic.request import RequestError, build_request
from vocalis_anthropic.stream import StreamAssembler

if TYPE_CHECKING:
    from vocalis.chat import ChatContext

DEFAULT_MODEL = "claude-haiku-4-5"
"""Claude's fastest current model: in a voice agent, time to first token rules."""


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The TLS context every client of the process shares.

    Building one loads the CA bundle (20 ms, far more on a busy machine): once
    per client, it would stall the event loop at every session start. An
    ``SSLContext`` is safe to share between clients and threads.
    """
    import httpx2  # the SDK's HTTP library

    return httpx2.create_ssl_context()


def _warm_sdk() -> None:
    # The SDK's slow first-use work, for a thread: the TLS context, and the
    # messages module it imports on first use.
    shared_ssl_context()
    importlib.import_module("anthropic.resources.messages")


# Seconds to open a connection, capped below the read timeout: an unreachable
# host should fail fast so a fallback LLM can take over.
_CONNECT_TIMEOUT = 5.0


class AnthropicLLM(LLM):
    """Chat with Claude through the Anthropic Messages API (official SDK).

    Text is yielded as it streams in; each tool call is yielded as soon as
    its block is complete; the last chunk carries the token usage. One HTTP
    client (and its connection pool) is reused across chats and closed by
    :meth:`aclose`. Closing a chat's iterator, or cancelling its consumer,
    closes its HTTP response at once, which ends the generation server-side.
    """

    name: ClassVar[str] = "anthropic"

    class Settings(ProviderSettings):
        """Settings, read from ``VOCALIS_LLM_ANTHROPIC_*``.

        Attributes:
            api_key: The API key; falls back to ``ANTHROPIC_API_KEY``, then
                to the SDK's other credentials (``ANTHROPIC_AUTH_TOKEN``,
                profiles).
            base_url: The API root; falls back to ``ANTHROPIC_BASE_URL``, then
                to Anthropic's.
            model: The Claude model.
            max_tokens: Most tokens one reply may have.
            temperature: Sampling temperature (0 to 1); None (the default)
                sends none. Claude Opus 4.7 and later models refuse it.
            timeout: Seconds a request (or a pause inside a stream) may take.
            max_retries: Retries the SDK makes on connection errors, 408, 409,
                429, 5xx and 529 before the first byte of a reply.
            headers: Extra HTTP headers for every request (e.g. a gateway's
                routing key, or ``anthropic-beta``).
        """

        model_config = provider_settings_config("llm", "anthropic")

        api_key: SecretStr | None = None
        base_url: str | None = None
        model: str = DEFAULT_MODEL
        max_tokens: int = Field(1024, ge=1)
        temperature: float | None = Field(None, ge=0.0, le=1.0)
        timeout: float = Field(30.0, gt=0)
        max_retries: int = Field(1, ge=0, le=10)
        headers: dict[str, str] = Field(default_factory=dict, repr=False)  # may carry keys

    settings: Settings

    def __init__(self, *, settings: ProviderSettings | None = None, **overrides: Any) -> None:
        super().__init__(settings=settings, **overrides)
        self._client: anthropic.AsyncAnthropic | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._streams: set[anthropic.AsyncStream[Any]] = set()
        self._aborted: set[anthropic.AsyncStream[Any]] = set()

    def _get_client(self) -> anthropic.AsyncAnthropic:
        loop = asyncio.get_running_loop()
        if self._client is not None and self._client_loop is not loop:
            # Pooled connections belong to the loop that opened them and the
            # old loop may be gone (one asyncio.run per script step), so the
            # old client can only be dropped, not closed.
            self._client = None
        if self._client is None:
            s = self.settings
            key = s.api_key.get_secret_value() if s.api_key is not None else None
            self._client = anthropic.AsyncAnthropic(
                api_key=key or os.environ.get("ANTHROPIC_API_KEY") or None,
                base_url=s.base_url or os.environ.get("ANTHROPIC_BASE_URL") or None,
                timeout=anthropic.Timeout(s.timeout, connect=min(s.timeout, _CONNECT_TIMEOUT)),
                max_retries=s.max_retries,
                default_headers=s.headers or None,
                http_client=anthropic.DefaultAsyncHttpxClient(verify=shared_ssl_context()),
            )
            self._client_loop = loop
        return self._client

    def error(self, message: str, *, recoverable: bool = True, kind: ErrorKind = ErrorKind.UNKNOWN) -> ProviderError:
        """Build a :class:`ProviderError` whose message has no credential in it.

        Messages quote what the server said, and a server (or a gateway in
        front of it) may echo the request's key, e.g. in a 401 reply: the
        message goes to the log and to the remote client of ``vocalis serve``.
        """
        return super().error(redact(message, secrets_of(self)), recoverable=recoverable, kind=kind)

    async def prewarm(self) -> None:
        """Make the HTTP client ahead of the first chat (no request is sent)."""
        await asyncio.to_thread(_warm_sdk)
        self._get_client()

    async def aclose(self) -> None:
        """End the chats in flight and close the HTTP client. Idempotent."""
        streams, self._streams = list(self._streams), set()
        for stream in streams:
            self._aborted.add(stream)
            try:
                await stream.close()
            except Exception as exc:  # the client is closed next regardless
                logger.debug("{}: closing a stream failed: {}", self.label, exc)
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            await client.close()
        self._client_loop = None

    async def chat(
        self,
        chat_ctx: ChatContext,
        *,
        tools: Sequence[ToolSpec] = (),
        tool_choice: str | None = None,
    ) -> AsyncIterator[ChatChunk]:
        """Stream a reply: text as it arrives, each tool call once complete,
        then a last chunk with the token usage.

        Raises:
            ProviderError: Empty conversation or bad ``tool_choice``
                (``BAD_REQUEST``, not recoverable); no credentials (``AUTH``,
                not recoverable); an HTTP error (kind by status; recoverable
                for 408, 409, 429, 5xx and 529, not for 400, 401, 403 and
                404); an ``error`` event (kind by its type), a dropped
                connection (``CONNECTION``), a stalled stream (``STALLED``),
                a malformed or truncated stream (``PROTOCOL``), all
                recoverable unless the event's type says otherwise.
        """
        s = self.settings
        try:
            request = build_request(
                chat_ctx,
                model=s.model,
                max_tokens=s.max_tokens,
                temperature=s.temperature,
                tools=tools,
                tool_choice=tool_choice,
            )
        except RequestError as exc:
            raise self.error(str(exc), recoverable=False, kind=ErrorKind.BAD_REQUEST) from None
        logger.debug(
            "{}: {} messages, {} tools, model {}",
            self.label,
            len(request["messages"]),
            len(tools),
            s.model,
        )
        try:
            # Making the client may read credentials (a profile, a token file).
            client = self._get_client()
        except Exception as exc:
            raise provider_error(self, exc, started=False) from exc
        if not self._has_credentials(client):
            raise credentials_error(self)
        try:
            stream = await client.messages.create(**request, stream=True)
        except Exception as exc:
            raise provider_error(self, exc, started=False) from exc
        self._streams.add(stream)
        try:
            async with contextlib.aclosing(self._read(stream)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            # Reached on completion, error, aclose() of the iterator and
            # cancellation alike: closing the response drops the connection
            # mid-body, which is what stops the generation server-side.
            self._streams.discard(stream)
            await _close(stream)
            self._aborted.discard(stream)

    def _has_credentials(self, client: anthropic.AsyncAnthropic) -> bool:
        """Whether requests will carry credentials of some sort.

        Asked of the client's attributes, before the request: without any,
        the SDK would refuse to send it with a plain ``TypeError``.
        """
        if any(name.lower() in ("x-api-key", "authorization") for name in self.settings.headers):
            return True
        names = ("api_key", "auth_token", "credentials")
        if not all(hasattr(client, name) for name in names):
            return True  # an SDK that keeps them elsewhere: let it decide
        return any(getattr(client, name) is not None for name in names)

    async def _read(self, stream: anthropic.AsyncStream[Any]) -> AsyncGenerator[ChatChunk, None]:
        assembler = StreamAssembler()
        while True:
            try:
                event = await stream.__anext__()
            except StopAsyncIteration:
                break
            except Exception as exc:
                if stream in self._aborted:
                    return  # stopped by aclose() of the provider: no final chunk
                if assembler.finished:
                    break  # a failure after message_stop loses nothing
                raise provider_error(self, exc, started=True) from exc
            if (chunk := assembler.feed(event)) is not None:
                yield chunk
        if stream in self._aborted:
            return
        if not assembler.finished:
            raise self.error("the stream ended before message_stop", recoverable=True, kind=ErrorKind.PROTOCOL)
        yield ChatChunk(usage=assembler.usage)


async def _close(stream: anthropic.AsyncStream[Any]) -> None:
    # Never raises: it runs in a finally that may be carrying the real error.
    try:
        await stream.close()
        # The SDK reads events through a generator it makes on first use;
        # close it here rather than leave it to the garbage collector, which
        # would schedule its cleanup as a stray task on the loop.
        events = vars(stream).get("_iterator")
        if events is not None:
            await events.aclose()
    except Exception as exc:
        logger.debug("llm:anthropic: closing a stream failed: {}", exc)
