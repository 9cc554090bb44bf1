"""Turn SDK and transport failures into labelled :class:`ProviderError`s."""

from __future__ import annotations

import anthropic
import httpx2
from vocalis.providers.base import Provider, ProviderError

# Worth a retry or a fallback: timeouts, conflicts, rate limits, server
# errors and 529 "overloaded". Anything else (400, 401, 403, 404, 413)
# fails the same way next time.
_RETRYABLE_STATUS = frozenset({408, 409, 429})

# The ``error.type`` of an ``error`` event sent mid-stream (the HTTP status
# was already 200 then, so only the type tells what went wrong).
_RETRYABLE_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})
_FATAL_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
    }
)


def provider_error(provider: Provider, exc: BaseException) -> ProviderError:
    """A :class:`ProviderError` naming ``provider`` for any failure of a chat.

    Rate limits, overload, timeouts, dropped connections and server errors
    are recoverable; bad requests, bad keys, missing permissions and unknown
    models are not.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, anthropic.APITimeoutError):
        return provider.error("request timed out", recoverable=True)
    if isinstance(exc, anthropic.APIConnectionError):
        return provider.error(f"connection failed: {_cause(exc)}", recoverable=True)
    if isinstance(exc, anthropic.APIStatusError):
        return _status_error(provider, exc)
    if isinstance(exc, httpx2.TimeoutException):
        # Raised while reading the stream: the server went quiet for longer
        # than the timeout after the reply had begun.
        return provider.error("the stream stalled (read timed out)", recoverable=True)
    if isinstance(exc, httpx2.HTTPError | httpx2.StreamError):
        return provider.error(f"connection lost mid-stream: {_describe(exc)}", recoverable=True)
    if isinstance(exc, ValueError):
        # json.JSONDecodeError from an event whose data is not JSON.
        return provider.error(f"malformed stream event: {exc}", recoverable=True)
    if isinstance(exc, anthropic.CredentialsError) or "authentication method" in str(exc):
        # No key was configured and the SDK found no other credentials.
        return provider.error(
            f"no credentials: set VOCALIS_LLM_ANTHROPIC_API_KEY or ANTHROPIC_API_KEY ({exc})",
            recoverable=False,
        )
    if isinstance(exc, anthropic.AnthropicError):
        return provider.error(_describe(exc), recoverable=True)
    return provider.error(f"unexpected failure: {_describe(exc)}", recoverable=False)


def _status_error(provider: Provider, exc: anthropic.APIStatusError) -> ProviderError:
    kind = exc.type or ""
    detail = exc.api_message or exc.message
    if 200 <= exc.status_code < 300:
        # An ``error`` event inside a stream that had started fine.
        recoverable = kind not in _FATAL_TYPES
        return provider.error(f"{kind or 'error'} mid-stream: {detail}", recoverable=recoverable)
    status = exc.status_code
    recoverable = status in _RETRYABLE_STATUS or status >= 500 or kind in _RETRYABLE_TYPES
    label = f"HTTP {status} {kind}".rstrip()
    return provider.error(f"{label}: {detail}", recoverable=recoverable)


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__
    return _describe(cause) if cause is not None else str(exc)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
