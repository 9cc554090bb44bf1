"""What every OpenAI provider shares: connection settings, the client, error mapping."""

from __future__ import annotations

import asyncio
import functools
import importlib
import os
import ssl
from typing import Any, ClassVar

import openai
from pydantic import Field, SecretStr, field_validator

from vocalis.providers.base import ErrorKind, Provider, ProviderError, describe_cause
from vocalis.providers.redact import provider_secrets, redact
from vocalis.settings import ProviderSettings

# Status codes worth trying again later or on another provider; anything else
# (400, 401, 403, 404, 422) will fail the same way on a retry.
_RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class OpenAISettings(ProviderSettings):
    """Connection settings shared by the OpenAI providers.

    Each provider's ``Settings`` subclasses this with its own env prefix
    (``VOCALIS_LLM_OPENAI_``, ``VOCALIS_STT_OPENAI_``, ...).

    Attributes:
        api_key: The API key; falls back to ``OPENAI_API_KEY``. Local
            OpenAI-compatible servers that need none accept any value.
        base_url: The API root, e.g. ``http://127.0.0.1:8080/v1`` for a
            llama.cpp server; falls back to ``OPENAI_BASE_URL``, then OpenAI.
        organization: Optional organization id.
        project: Optional project id.
        timeout: Seconds before a request (or a pause inside a stream) fails.
        max_retries: Retries the SDK makes for connection errors, 408, 409,
            429 and 5xx before the provider reports the error.
        headers: Extra HTTP headers sent with every request (e.g. for
            OpenRouter's ranking headers or a gateway's routing key).
    """

    api_key: SecretStr | None = None
    base_url: str | None = None
    organization: str | None = None
    project: str | None = None
    timeout: float = Field(30.0, gt=0)
    max_retries: int = Field(1, ge=0, le=10)
    # Headers often carry credentials (gateway keys): never in reprs or logs.
    headers: dict[str, str] = Field(default_factory=dict, repr=False)

    @field_validator("base_url")
    @classmethod
    def _url_with_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError(f"base_url needs a scheme, e.g. http://{value}")
        return value


class OpenAIClientMixin:
    """Gives a provider its SDK client: made on first use, one per event loop.

    The SDK's connection pool belongs to the loop that opened it, so a
    provider reused under another loop (``asyncio.run`` per call) gets a
    new client. Mix in before the provider base class.
    """

    settings: OpenAISettings
    _client: openai.AsyncOpenAI | None = None
    _client_loop: asyncio.AbstractEventLoop | None = None
    # The SDK imports a resource's module on first use (tenths of a second on
    # a busy machine): prewarm imports them off the event loop.
    sdk_modules: ClassVar[tuple[str, ...]] = ()

    def _client_options(self) -> dict[str, Any]:
        """Extra keyword arguments for :func:`make_client`."""
        return {}

    @property
    def client(self) -> openai.AsyncOpenAI:
        """The SDK client for the running event loop.

        Raises:
            ProviderError: OpenAI itself would be called without an API key.
        """
        if missing_key(self.settings):
            prefix = self.settings.model_config.get("env_prefix", "")
            raise self.error(
                f"no API key: set {prefix}API_KEY or OPENAI_API_KEY, or point {prefix}BASE_URL "
                "at an OpenAI-compatible server",
                recoverable=False,
                kind=ErrorKind.AUTH,
            )
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if self._client is None or (loop is not None and self._client_loop not in (None, loop)):
            self._client = make_client(self.settings, **self._client_options())
            self._client_loop = loop
        elif self._client_loop is None:
            self._client_loop = loop
        return self._client

    def secret_values(self) -> list[str]:
        """The credentials this provider sends: its key (from the settings or
        ``OPENAI_API_KEY``) and its extra headers' values."""
        return [*provider_secrets([self]), resolve_api_key(self.settings)]

    def error(self, message: str, *, recoverable: bool = True, kind: ErrorKind = ErrorKind.UNKNOWN) -> ProviderError:
        """Build a :class:`ProviderError` whose message has no credential in it.

        Messages quote what the server said, and a server (or a gateway in
        front of it) may echo the request's key, e.g. in a 401 reply: the
        message goes to the log and to the remote client of ``vocalis serve``.
        """
        base = super().error  # type: ignore[misc]  # Provider.error, after this mixin
        return base(redact(message, self.secret_values()), recoverable=recoverable, kind=kind)  # type: ignore[no-any-return]

    async def prewarm(self) -> None:
        """Connect and check the key now, so the first request skips the handshakes."""
        await asyncio.to_thread(warm_sdk, self.sdk_modules)
        await check_server(self, self.client)  # type: ignore[arg-type]

    async def aclose(self) -> None:
        """Close the HTTP client. Idempotent."""
        client, self._client = self._client, None
        loop, self._client_loop = self._client_loop, None
        if client is not None and loop in (None, asyncio.get_running_loop()):
            await client.close()


def resolve_api_key(settings: OpenAISettings) -> str:
    """The key to send: the setting, ``OPENAI_API_KEY``, or a placeholder.

    Local servers (llama.cpp, vLLM, Ollama) usually need no key, and the SDK
    refuses to start without one, so a placeholder stands in.
    """
    if settings.api_key is not None:
        return settings.api_key.get_secret_value()
    return os.environ.get("OPENAI_API_KEY") or "no-key"


def missing_key(settings: OpenAISettings) -> bool:
    """Whether OpenAI itself (no other ``base_url``) would be called without a key."""
    base_url = settings.base_url or os.environ.get("OPENAI_BASE_URL")
    return resolve_api_key(settings) == "no-key" and (not base_url or "api.openai.com" in base_url)


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The TLS context every client of the process shares.

    Building one loads the CA bundle (20 ms, far more on a busy machine): once
    per client, it would stall the event loop at every session start. An
    ``SSLContext`` is safe to share between clients and threads.
    """
    import httpx2  # the SDK's HTTP library

    return httpx2.create_ssl_context()


def warm_sdk(modules: tuple[str, ...] = ()) -> None:
    """Do the SDK's slow first-use work now (call it in a thread): the TLS
    context and the lazily imported resource modules."""
    shared_ssl_context()
    for module in modules:
        importlib.import_module(module)


def make_client(settings: OpenAISettings, **kwargs: Any) -> openai.AsyncOpenAI:
    """Build an async client from the provider's settings."""
    kwargs.setdefault("http_client", openai.DefaultAsyncHttpxClient(verify=shared_ssl_context()))
    return openai.AsyncOpenAI(
        api_key=resolve_api_key(settings),
        base_url=settings.base_url or os.environ.get("OPENAI_BASE_URL") or None,
        organization=settings.organization,
        project=settings.project,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
        default_headers=settings.headers or None,
        **kwargs,
    )


async def check_server(provider: Provider, client: openai.AsyncOpenAI) -> None:
    """Open a connection to the server and check the key, ahead of the first turn.

    Lists the models (``GET /models``), which also leaves a warm connection in
    the pool, so the first real request skips the TCP and TLS handshakes. A
    server without that endpoint is fine; only an unreachable server or a
    refused key is an error.

    Raises:
        ProviderError: Unreachable (recoverable) or the key is refused (not).
    """
    try:
        seconds = min(getattr(provider.settings, "timeout", 5.0), 5.0)
        await client.with_options(timeout=seconds, max_retries=0).models.list()
    except openai.APIStatusError as exc:
        if exc.status_code in (401, 403):
            raise provider_error(provider, exc, started=False) from exc
    except Exception as exc:
        raise provider_error(provider, exc, started=False) from exc


def provider_error(provider: Provider, exc: BaseException, *, started: bool) -> ProviderError:
    """Turn an SDK exception into a :class:`ProviderError` naming the provider.

    Failures are sorted by exception class and HTTP status, never by the
    text of an SDK message; the message is in our words and says what we
    know: whether the reply had started streaming. Rate limits, timeouts,
    dropped connections, malformed replies and server errors are
    recoverable (a retry or a fallback may succeed); bad requests, bad keys
    and unknown models are not.

    Args:
        provider: The provider that failed.
        exc: What the SDK (or its HTTP library) raised.
        started: Whether the reply had started streaming (its headers had
            arrived and its body was being read) when ``exc`` was raised.

    Returns:
        The error to raise; a :class:`ProviderError` is returned as it is.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        recoverable = status in _RETRYABLE_STATUS or status >= 500
        where = _url_of(exc, " from") if status == 404 else ""
        detail = _status_detail(exc, secrets_of(provider))
        return provider.error(
            f"HTTP {status}{where}{': ' + detail if detail else ''}",
            recoverable=recoverable,
            kind=status_kind(status),
        )
    bases = {cls.__name__ for cls in type(exc).__mro__}
    # The HTTP library's own errors (raised while a streamed body is read)
    # are matched by class name, so both httpx and httpx2 are covered.
    if isinstance(exc, openai.APITimeoutError) or "TimeoutException" in bases:
        if started:
            return provider.error(
                f"the stream stalled: nothing arrived for {_seconds(provider)}",
                recoverable=True,
                kind=ErrorKind.STALLED,
            )
        return provider.error(
            f"request{_url_of(exc)} timed out: no answer within {_seconds(provider)}",
            recoverable=True,
            kind=ErrorKind.TIMEOUT,
        )
    if isinstance(exc, openai.APIConnectionError) or bases & {"TransportError", "StreamError"}:
        what = "connection lost mid-stream" if started else f"connection failed{_url_of(exc)}"
        return provider.error(f"{what}{_cause(provider, exc)}", recoverable=True, kind=ErrorKind.CONNECTION)
    if isinstance(exc, openai.APIResponseValidationError | ValueError):
        # ValueError: json.JSONDecodeError from a streamed event that is not JSON.
        what = "malformed stream event" if started else "malformed response"
        return provider.error(f"{what}{_cause(provider, exc)}", recoverable=True, kind=ErrorKind.PROTOCOL)
    if isinstance(exc, openai.APIError) and isinstance(exc.body, dict):
        # An error object sent inside a stream that had started (HTTP 200).
        kind = _error_kind(exc.body)
        detail = _status_detail(exc, secrets_of(provider))
        what = "error event mid-stream" if started else "error in the reply"
        return provider.error(
            f"{what}{': ' + detail if detail else ''}",
            recoverable=kind not in _FATAL_KINDS,
            kind=kind,
        )
    return provider.error(f"unexpected failure{_cause(provider, exc)}", recoverable=True)


def status_kind(status: int) -> ErrorKind:
    """The :class:`ErrorKind` of an HTTP error status (see :meth:`ErrorKind.of_status`)."""
    return ErrorKind.of_status(status)


# Kinds that a retry or another provider will not get past.
_FATAL_KINDS = frozenset({ErrorKind.AUTH, ErrorKind.BAD_REQUEST})

# ``type`` or ``code`` values of an error object, by kind.
_ERROR_KINDS: dict[str, ErrorKind] = {
    "invalid_request_error": ErrorKind.BAD_REQUEST,
    "invalid_api_key": ErrorKind.AUTH,
    "authentication_error": ErrorKind.AUTH,
    "permission_error": ErrorKind.AUTH,
    "insufficient_quota": ErrorKind.RATE_LIMIT,
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "server_error": ErrorKind.SERVER,
    "api_error": ErrorKind.SERVER,
}


def _error_kind(error: dict[str, Any]) -> ErrorKind:
    """The kind of an API error object, from its ``code`` or its ``type``."""
    for key in ("code", "type"):
        value = error.get(key)
        if isinstance(value, str) and value in _ERROR_KINDS:
            return _ERROR_KINDS[value]
    return ErrorKind.UNKNOWN


def _seconds(provider: Provider) -> str:
    seconds = getattr(provider.settings, "timeout", None)
    return f"{seconds:g} s" if isinstance(seconds, int | float) else "the timeout"


def secrets_of(provider: object) -> list[str]:
    """The credentials of any provider, to take out of the text of its errors."""
    if isinstance(provider, OpenAIClientMixin):
        return provider.secret_values()
    return provider_secrets([provider])


def _cause(provider: Provider, exc: BaseException) -> str:
    return describe_cause(exc, secrets_of(provider))


def _url_of(exc: BaseException, word: str = " to") -> str:
    """`` to <url>`` of the request an SDK error is about, if it has one."""
    try:
        return f"{word} {exc.request.url}"  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return ""


def _status_detail(exc: openai.APIError, secrets: list[str]) -> str:
    """The error message of the body the server sent, if it had one, redacted."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return redact(str(error["message"]), secrets)
        if isinstance(error, str):
            return redact(error, secrets)
    if isinstance(body, str) and body.strip():
        # Redacted before it is cut short: half a key would no longer be found.
        return redact(body.strip(), secrets, limit=200)
    return ""
