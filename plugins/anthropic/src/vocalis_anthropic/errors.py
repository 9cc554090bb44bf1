"""Turn SDK and transport failures into labelled :class:`ProviderError`s.

Failures are sorted by exception class, HTTP status and (for an ``error``
event inside a stream) the API's error type, never by the text of an SDK
message: that text, and even which class a failure surfaces as, changes
between SDK versions. A dropped connection mid-stream, for instance, is a
raw ``httpx2`` transport error in some versions and an
``anthropic.APIConnectionError`` in others. The wording of the resulting
error is ours and depends on what the caller knows: whether the reply had
started streaming when the failure happened.
"""

from __future__ import annotations

import os

import anthropic
import httpx2

from vocalis.providers.base import ErrorKind, Provider, ProviderError, describe_cause
from vocalis.providers.redact import provider_secrets

# Worth a retry or a fallback: timeouts, conflicts, rate limits, server
# errors and 529 "overloaded". Anything else (400, 401, 403, 404, 413)
# fails the same way next time.
_RETRYABLE_STATUS = frozenset({408, 409, 429})

# The API's ``error.type`` values (in an HTTP error body, or in an ``error``
# event sent mid-stream, when the HTTP status was already 200 and only the
# type tells what went wrong), by kind.
_TYPE_KINDS: dict[str, ErrorKind] = {
    "invalid_request_error": ErrorKind.BAD_REQUEST,
    "not_found_error": ErrorKind.BAD_REQUEST,
    "request_too_large": ErrorKind.BAD_REQUEST,
    "authentication_error": ErrorKind.AUTH,
    "permission_error": ErrorKind.AUTH,
    "billing_error": ErrorKind.AUTH,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "overloaded_error": ErrorKind.RATE_LIMIT,
    "timeout_error": ErrorKind.TIMEOUT,
    "api_error": ErrorKind.SERVER,
}
_RETRYABLE_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})

# HTTP statuses whose kind is not simply "4xx is the request's fault".
_STATUS_KINDS: dict[int, ErrorKind] = {
    401: ErrorKind.AUTH,
    402: ErrorKind.AUTH,  # billing: the account may not make requests
    403: ErrorKind.AUTH,
    408: ErrorKind.TIMEOUT,
    409: ErrorKind.UNKNOWN,
    429: ErrorKind.RATE_LIMIT,
    529: ErrorKind.RATE_LIMIT,  # overloaded
}

NO_CREDENTIALS = "no credentials: set VOCALIS_LLM_ANTHROPIC_API_KEY or ANTHROPIC_API_KEY"
"""The start of the message of a missing-credentials error."""


def provider_error(provider: Provider, exc: BaseException, *, started: bool) -> ProviderError:
    """A :class:`ProviderError` naming ``provider`` for any failure of a chat.

    Rate limits, overload, timeouts, dropped connections, malformed events
    and server errors are recoverable; bad requests, bad keys, missing
    permissions and unknown models are not.

    Args:
        provider: The provider that failed.
        exc: What the SDK (or its HTTP library) raised.
        started: Whether the reply had started streaming (the response
            headers had arrived) when ``exc`` was raised.

    Returns:
        The error to raise, with its :class:`ErrorKind`, ``recoverable``
        flag and a message in our own words. A :class:`ProviderError` is
        returned as it is.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, anthropic.APIStatusError):
        return _status_error(provider, exc, started=started)
    if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
        # APITimeoutError before APIConnectionError: it is a subclass.
        if started:
            return provider.error(
                f"the stream stalled: nothing arrived for {_timeout(provider)}",
                recoverable=True,
                kind=ErrorKind.STALLED,
            )
        return provider.error(
            f"request timed out: no answer within {_timeout(provider)}",
            recoverable=True,
            kind=ErrorKind.TIMEOUT,
        )
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError | httpx2.StreamError):
        what = "connection lost mid-stream" if started else "connection failed"
        return provider.error(f"{what}{_detail(provider, exc)}", recoverable=True, kind=ErrorKind.CONNECTION)
    if isinstance(exc, anthropic.APIResponseValidationError | ValueError):
        # ValueError: json.JSONDecodeError from an event whose data is not JSON.
        what = "malformed stream event" if started else "malformed response"
        return provider.error(f"{what}{_detail(provider, exc)}", recoverable=True, kind=ErrorKind.PROTOCOL)
    if isinstance(exc, anthropic.CredentialsError):
        # A credentials source (profile, token file) was found but failed.
        return credentials_error(provider, exc)
    if isinstance(exc, anthropic.AnthropicError | httpx2.HTTPError):
        return provider.error(f"SDK failure{_detail(provider, exc)}", recoverable=True)
    return provider.error(f"unexpected failure{_detail(provider, exc)}", recoverable=False)


def credentials_error(provider: Provider, exc: BaseException | None = None) -> ProviderError:
    """The error for a chat that has no credentials to send (not recoverable).

    Args:
        provider: The provider without credentials.
        exc: The SDK's credentials failure, if it raised one.
    """
    return provider.error(
        f"{NO_CREDENTIALS}{_detail(provider, exc) if exc is not None else ''}",
        recoverable=False,
        kind=ErrorKind.AUTH,
    )


def _status_error(provider: Provider, exc: anthropic.APIStatusError, *, started: bool) -> ProviderError:
    error_type = str(getattr(exc, "type", None) or "")
    detail = _server_message(exc)
    status = exc.status_code
    if started or 200 <= status < 300:
        # An ``error`` event inside a stream that had started fine.
        kind = _TYPE_KINDS.get(error_type, ErrorKind.UNKNOWN)
        recoverable = kind is ErrorKind.UNKNOWN or error_type in _RETRYABLE_TYPES
        return provider.error(
            f"error event mid-stream: {error_type or 'unknown type'}{detail}",
            recoverable=recoverable,
            kind=kind,
        )
    recoverable = status in _RETRYABLE_STATUS or status >= 500 or error_type in _RETRYABLE_TYPES
    return provider.error(
        f"HTTP {status} {error_type}".rstrip() + detail,
        recoverable=recoverable,
        kind=status_kind(status, error_type),
    )


def status_kind(status: int, error_type: str = "") -> ErrorKind:
    """The kind of an HTTP error status (``error_type`` breaks the ties).

    Args:
        status: The HTTP status code.
        error_type: The API's ``error.type``, if the body had one.
    """
    if status in _STATUS_KINDS:
        return _STATUS_KINDS[status]
    kind = ErrorKind.of_status(status)
    if kind is ErrorKind.UNKNOWN and 400 <= status < 500:
        return ErrorKind.BAD_REQUEST
    if kind is ErrorKind.UNKNOWN:
        return _TYPE_KINDS.get(error_type, ErrorKind.UNKNOWN)
    return kind


def _server_message(exc: anthropic.APIStatusError) -> str:
    """``": <error.message>"`` from the body the server sent, if it had one."""
    message = getattr(exc, "api_message", None)
    if not message and isinstance(exc.body, dict):
        error = exc.body.get("error")
        message = error.get("message") if isinstance(error, dict) else None
    return f": {message}" if isinstance(message, str) and message else ""


def _timeout(provider: Provider) -> str:
    seconds = getattr(provider.settings, "timeout", None)
    return f"{seconds:g} s" if isinstance(seconds, int | float) else "the timeout"


def secrets_of(provider: object) -> list[str]:
    """The credentials a provider may send, to take out of the text of its errors.

    Those in its settings (the key, the extra headers' values), the SDK's
    environment variables and what its client holds (the SDK may have read
    a token from elsewhere).
    """
    found = provider_secrets([provider])
    found += [os.environ.get(name, "") for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")]
    client = getattr(provider, "_client", None)
    for name in ("api_key", "auth_token"):
        value = getattr(client, name, None)
        if isinstance(value, str):
            found.append(value)
    return found


def _detail(provider: Provider, exc: BaseException) -> str:
    return describe_cause(exc, secrets_of(provider))
