"""Gemini API failures as labelled :class:`ProviderError`s, sorted by type.

The API reports errors as ``{"error": {"code", "message", "status",
"details"}}``: in the body of an HTTP error, inside a stream that had already
started, or as a Live API message. Its canonical ``status`` (``INVALID_ARGUMENT``,
``RESOURCE_EXHAUSTED``, ...) decides the kind, then the HTTP status; a bad
key is a 400 ``INVALID_ARGUMENT`` whose detail says ``API_KEY_INVALID``, and
a ``RetryInfo`` detail says how long to wait. There, the message text only
goes into our message, never into the decision.

The Live API closes its WebSocket with 1007 (invalid argument, but also "API
key not valid" and "API key expired"), 1008 (policy: no or refused
credentials, an unknown model, "Operation is not implemented") or 1011
(internal error, but also "You exceeded your current quota"). A close frame
has no other field, so its reason text refines the code's kind.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vocalis.providers.base import ErrorKind, ProviderError, describe_cause
from vocalis_google.common import secrets_of

if TYPE_CHECKING:
    from vocalis.providers.base import Provider

K = ErrorKind
# Canonical status -> (kind, whether a retry or a fallback may help).
_STATUS: dict[str, tuple[ErrorKind, bool]] = {
    "INVALID_ARGUMENT": (K.BAD_REQUEST, False),
    "FAILED_PRECONDITION": (K.BAD_REQUEST, False),  # e.g. the region is not served
    "OUT_OF_RANGE": (K.BAD_REQUEST, False),
    "NOT_FOUND": (K.BAD_REQUEST, False),
    "ALREADY_EXISTS": (K.BAD_REQUEST, False),
    "UNIMPLEMENTED": (K.BAD_REQUEST, False),
    "UNAUTHENTICATED": (K.AUTH, False),
    "PERMISSION_DENIED": (K.AUTH, False),
    "RESOURCE_EXHAUSTED": (K.RATE_LIMIT, True),
    "DEADLINE_EXCEEDED": (K.TIMEOUT, True),
    "UNAVAILABLE": (K.SERVER, True),  # also "the model is overloaded"
    "INTERNAL": (K.SERVER, True),
    "ABORTED": (K.SERVER, True),
    "DATA_LOSS": (K.SERVER, True),
    "CANCELLED": (K.UNKNOWN, True),
    "UNKNOWN": (K.UNKNOWN, True),
}
# ``details[].reason`` values that make a 400 a credentials failure.
_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED", "ACCESS_TOKEN_EXPIRED"})
_STATUS_TOKEN = re.compile(r"\b(" + "|".join(_STATUS) + r")\b")
_RETRYABLE_HTTP = frozenset({408, 409, 429})
# Close reasons the Live API gives for credentials ("API key not valid. Please
# pass a valid API key.", "API key expired. Please renew the API key.", "Request
# had invalid authentication credentials.", "Method doesn't allow unregistered
# callers") and for quota ("You exceeded your current quota, please check ...").
_AUTH_REASON = re.compile(r"api[ _]key|credential|unregistered caller|permission|unauthenticated", re.IGNORECASE)
_QUOTA_REASON = re.compile(r"quota|rate limit|resource[ _]exhausted", re.IGNORECASE)


@dataclass(slots=True)
class ApiError:
    """The API's error object.

    Attributes:
        code: The HTTP-style code it carries, if any.
        status: The canonical status (``INVALID_ARGUMENT``...), or "".
        message: Its message ("" if none).
        reasons: The ``reason`` of each of its ``details``.
        retry_delay: Seconds its ``RetryInfo`` detail asks to wait, if any.
    """

    code: int | None = None
    status: str = ""
    message: str = ""
    reasons: list[str] = field(default_factory=list)
    retry_delay: float | None = None


def parse_error(value: object) -> ApiError | None:
    """The error object in a parsed body or message (``{"error": {...}}``), or None."""
    if isinstance(value, list) and value:  # some gateways wrap the body in a list
        value = value[0]
    error = value.get("error") if isinstance(value, dict) else None
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    details = error.get("details")
    details = [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []
    delays = [parse_duration(d["retryDelay"]) for d in details if "retryDelay" in d]
    return ApiError(
        code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        status=str(error.get("status") or ""),
        message=str(error.get("message") or ""),
        reasons=[str(d["reason"]) for d in details if "reason" in d],
        retry_delay=delays[0] if delays else None,
    )


def parse_duration(value: object, default: float = 0.0) -> float:
    """Seconds of a protobuf ``Duration`` in JSON (``"50s"``, ``"1.5s"``, ``"0.000340s"``).

    Args:
        value: The duration as the API sends it.
        default: What an absent or unreadable value counts as.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0.0, float(value))
    if not isinstance(value, str) or not value.strip().endswith("s"):
        return default
    try:
        return max(0.0, float(value.strip().removesuffix("s")))
    except ValueError:
        return default


def parse_error_text(text: str) -> ApiError | None:
    """The error object in a raw body, or None when it is not the API's JSON."""
    try:
        return parse_error(json.loads(text))
    except ValueError:
        return None


def classify(http_status: int | None, api: ApiError | None) -> tuple[ErrorKind, bool]:
    """``(kind, recoverable)`` of an error, from its status and its error object."""
    if api is not None and set(api.reasons) & _AUTH_REASONS:
        return K.AUTH, False
    if api is not None and api.status in _STATUS:
        return _STATUS[api.status]
    status = http_status if http_status is not None else (api.code if api is not None else None)
    if status is None:
        return K.UNKNOWN, True
    kind = ErrorKind.of_status(status)
    if kind is K.UNKNOWN and 400 <= status < 500:
        kind = K.BAD_REQUEST
    return kind, status in _RETRYABLE_HTTP or status >= 500


def http_error(provider: Provider, status: int, body: str) -> ProviderError:
    """The error for an HTTP error reply (``body`` as received)."""
    api = parse_error_text(body)
    kind, recoverable = classify(status, api)
    name = f" {api.status}" if api is not None and api.status else ""
    detail = api.message if api is not None else body.strip()[:300]
    return provider.error(
        f"HTTP {status}{name}" + (f": {detail}" if detail else ""), recoverable=recoverable, kind=kind
    )


def api_error(provider: Provider, api: ApiError, *, where: str) -> ProviderError:
    """The error for an error object that came inside a stream or a socket."""
    kind, recoverable = classify(None, api)
    name = api.status or (f"code {api.code}" if api.code is not None else "error")
    text = f"{where}: {name}" + (f": {api.message}" if api.message else "")
    return provider.error(text, recoverable=recoverable, kind=kind)


def transport_error(provider: Provider, exc: BaseException, *, started: bool, timeout: float) -> ProviderError:
    """The error for a failure below HTTP: connecting, a drop, a stall, bad JSON."""
    import aiohttp

    if isinstance(exc, ProviderError):
        return exc
    detail = describe_cause(exc, secrets_of(provider))
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        if started:
            return provider.error(f"the stream stalled: nothing arrived for {timeout:g} s", kind=K.STALLED)
        return provider.error(f"request timed out: no answer within {timeout:g} s", kind=K.TIMEOUT)
    if isinstance(exc, aiohttp.InvalidURL):
        return provider.error(f"bad URL{detail}", recoverable=False, kind=K.BAD_REQUEST)
    if isinstance(exc, aiohttp.ClientError | OSError | EOFError):
        what = "connection lost mid-stream" if started else "connection failed"
        return provider.error(f"{what}{detail}", kind=K.CONNECTION)
    if isinstance(exc, ValueError):
        return provider.error(f"malformed reply{detail}", kind=K.PROTOCOL)
    return provider.error(f"unexpected failure{detail}", recoverable=False)


def close_error(provider: Provider, code: int | None, reason: str) -> ProviderError:
    """The error for a Live API socket the server closed (or that dropped).

    Args:
        provider: The provider whose connection closed.
        code: The close code (None when no close frame came).
        reason: The close frame's reason text.
    """
    how = "no close frame" if code is None else f"code {code}" + (f": {reason}" if reason else "")
    kind, recoverable = close_kind(code, reason)
    return provider.error(f"connection closed ({how})", recoverable=recoverable, kind=kind)


def close_kind(code: int | None, reason: str) -> tuple[ErrorKind, bool]:
    """``(kind, recoverable)`` of a close code, refined by its reason text
    (a canonical status such as ``RESOURCE_EXHAUSTED``, the key, the quota)."""
    reason = reason or ""
    token = _STATUS_TOKEN.search(reason)
    status = token.group(1) if token is not None else ""
    if code in (1007, 1008):
        # The same setup fails again on a new socket: never recoverable.
        if _AUTH_REASON.search(reason) or status in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            return K.AUTH, False
        if code == 1008 and not reason.strip():
            return K.AUTH, False  # a bare policy violation: refused access
        return K.BAD_REQUEST, False  # invalid argument, unknown model, not implemented
    if code == 1009:
        return K.BAD_REQUEST, False  # a message over the size limit
    if code == 1011:
        if status == "RESOURCE_EXHAUSTED" or _QUOTA_REASON.search(reason):
            return K.RATE_LIMIT, True
        return K.SERVER, True
    if code == 1013:
        return K.RATE_LIMIT, True  # try again later
    if code in (1012, 1014):
        return K.SERVER, True
    return K.CONNECTION, True  # 1000/1001 unannounced, 1006 or no frame: a drop
