"""Turn Cartesia's failures into labelled :class:`ProviderError`s.

Failures are sorted by what the API and the transport say in numbers and
types: the HTTP status of a refused request or handshake, the
``status_code`` (or ``error_code``) of an ``error`` message, the close code
of a WebSocket, the class of a transport exception. Never by message text.
Auth and bad requests are not recoverable (a retry fails the same way);
rate limits, server errors, timeouts and dropped connections are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vocalis.providers.base import ErrorKind, Provider, ProviderError, describe_cause

if TYPE_CHECKING:
    from websockets.exceptions import ConnectionClosed

# Worth a retry or a fallback; any other 4xx fails the same way next time.
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})

# ``error_code`` values of an error message that has no status.
_CODE_KINDS: dict[str, ErrorKind] = {
    "invalid_api_key": ErrorKind.AUTH,
    "unauthorized": ErrorKind.AUTH,
    "forbidden": ErrorKind.AUTH,
    "payment_required": ErrorKind.AUTH,
    "insufficient_credits": ErrorKind.AUTH,
    "rate_limited": ErrorKind.RATE_LIMIT,
    "concurrency_limited": ErrorKind.RATE_LIMIT,  # the API errors page's own example
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "concurrency_limit_exceeded": ErrorKind.RATE_LIMIT,
    "too_many_requests": ErrorKind.RATE_LIMIT,
    "internal_error": ErrorKind.SERVER,
    "internal_server_error": ErrorKind.SERVER,
    "timeout": ErrorKind.TIMEOUT,
}

# RFC 6455 close codes that say the messages sent were at fault.
_BAD_REQUEST_CLOSES = frozenset({1002, 1003, 1007, 1008, 1009, 1010})


def recoverable_status(status: int) -> bool:
    """Whether a request refused with HTTP ``status`` may succeed later or elsewhere."""
    return status in _RETRYABLE_STATUS or status >= 500


def status_error(provider: Provider, status: int, detail: str, *, what: str) -> ProviderError:
    """The error for an HTTP status (a refused request or handshake).

    Args:
        provider: The provider that failed.
        status: The HTTP status.
        detail: The server's message (already redacted), or "".
        what: What was refused, e.g. ``"handshake refused"``.
    """
    return provider.error(
        f"{what}: HTTP {status}{': ' + detail if detail else ''}",
        recoverable=recoverable_status(status),
        kind=ErrorKind.of_status(status),
    )


def message_error(provider: Provider, message: Mapping[str, Any]) -> ProviderError:
    """The error for an ``error`` message of the WebSocket.

    Older API versions send ``{"error": "<text>", "status_code": 400}``;
    newer ones ``{"title", "message", "error_code", "status_code"}``. Both
    are read.
    """
    status = message.get("status_code")
    code = message.get("error_code")
    parts = [message.get(key) for key in ("title", "message", "error")]
    detail = ": ".join(str(part) for part in parts if isinstance(part, str) and part)
    if isinstance(code, str) and code:
        detail = f"{code}: {detail}" if detail else code
    if isinstance(status, int) and not isinstance(status, bool) and status >= 400:
        kind = ErrorKind.of_status(status)
        recoverable = recoverable_status(status)
        head = f"error message (status {status})"
    else:
        kind = _CODE_KINDS.get(code, ErrorKind.UNKNOWN) if isinstance(code, str) else ErrorKind.UNKNOWN
        recoverable = kind not in (ErrorKind.AUTH, ErrorKind.BAD_REQUEST)
        head = "error message"
    return provider.error(f"{head}{': ' + detail if detail else ''}", recoverable=recoverable, kind=kind)


def close_status(code: int) -> int | None:
    """The HTTP status an application close code (4000-4999) stands for.

    ``4xyz`` is read as HTTP ``xyz`` when that is a status (``4429`` is
    429), else as ``400 + xyz`` (``4001`` is 401, ``4029`` is 429).
    """
    if not 4000 <= code <= 4999:
        return None
    status = code - 4000
    status = status if status >= 100 else 400 + status
    return status if 400 <= status <= 599 else None


def closed_error(provider: Provider, exc: ConnectionClosed | None, *, started: bool) -> ProviderError:
    """The error for a WebSocket that closed while a context was open.

    Args:
        provider: The provider whose connection closed.
        exc: What websockets raised, if it raised (None: the server closed
            cleanly, which still leaves the context unfinished).
        started: Whether audio had come for the context.
    """
    received = exc.rcvd if exc is not None else None
    code = received.code if received is not None else 1006
    reason = received.reason if received is not None else ""
    where = "mid-stream" if started else "before any audio"
    detail = f"close code {code}{' (' + reason + ')' if reason else ''}"
    status = close_status(code)
    if status is not None:
        return provider.error(
            f"connection closed {where}: {detail}",
            recoverable=recoverable_status(status),
            kind=ErrorKind.of_status(status),
        )
    if code in _BAD_REQUEST_CLOSES:
        return provider.error(f"connection closed {where}: {detail}", recoverable=False, kind=ErrorKind.BAD_REQUEST)
    kind = ErrorKind.SERVER if code in (1011, 1012, 1014) else ErrorKind.CONNECTION
    if code == 1013:  # "try again later"
        kind = ErrorKind.RATE_LIMIT
    return provider.error(f"connection closed {where}: {detail}", recoverable=True, kind=kind)


def handshake_error(provider: Provider, exc: BaseException, secrets: list[str], timeout: float) -> ProviderError:
    """The error for a WebSocket that could not be opened.

    Args:
        provider: The provider that connected.
        exc: What websockets (or the network) raised.
        secrets: Credentials to take out of a quoted body.
        timeout: The handshake's time limit, for the message.
    """
    from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, InvalidStatus):
        response = exc.response
        detail = body_detail(response.body or b"", secrets) or response.reason_phrase
        return status_error(provider, response.status_code, detail, what="handshake refused")
    if isinstance(exc, InvalidURI):
        return provider.error(
            f"bad WebSocket URL{describe_cause(exc, secrets)}", recoverable=False, kind=ErrorKind.BAD_REQUEST
        )
    if isinstance(exc, TimeoutError):
        return provider.error(f"handshake timed out after {timeout:g} s", kind=ErrorKind.TIMEOUT)
    if isinstance(exc, OSError | EOFError):
        return provider.error(f"connection failed{describe_cause(exc, secrets)}", kind=ErrorKind.CONNECTION)
    if isinstance(exc, InvalidHandshake):
        # The server answered, but not with a WebSocket upgrade.
        return provider.error(f"handshake failed{describe_cause(exc, secrets)}", kind=ErrorKind.PROTOCOL)
    return provider.error(f"could not connect{describe_cause(exc, secrets)}", kind=ErrorKind.UNKNOWN)


def transport_error(
    provider: Provider, exc: BaseException, secrets: list[str], *, started: bool, timeout: float
) -> ProviderError:
    """The error for an HTTP request (``/tts/bytes``) that broke off.

    Args:
        provider: The provider.
        exc: What aiohttp (or the network) raised.
        secrets: Credentials to take out of the text.
        started: Whether the reply's body was being read.
        timeout: The read time limit, for the message.
    """
    import aiohttp

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, TimeoutError):  # aiohttp's timeouts are TimeoutErrors too
        if started:
            return provider.error(f"the audio stalled: nothing arrived for {timeout:g} s", kind=ErrorKind.STALLED)
        return provider.error(f"no answer within {timeout:g} s", kind=ErrorKind.TIMEOUT)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientConnectionError | OSError):
        what = "connection lost mid-stream" if started else "connection failed"
        return provider.error(f"{what}{describe_cause(exc, secrets)}", kind=ErrorKind.CONNECTION)
    if isinstance(exc, aiohttp.InvalidURL):
        return provider.error(f"bad URL{describe_cause(exc, secrets)}", recoverable=False, kind=ErrorKind.BAD_REQUEST)
    return provider.error(f"unexpected failure{describe_cause(exc, secrets)}", kind=ErrorKind.UNKNOWN)


def body_detail(body: bytes | bytearray | str, secrets: list[str]) -> str:
    """The error message in a reply's body (JSON or text), short and redacted."""
    from vocalis.providers.redact import redact

    text = bytes(body).decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else body
    text = text.strip()
    if not text:
        return ""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        parts = [data.get(key) for key in ("title", "message", "error", "detail")]
        found = ": ".join(str(p) for p in parts if isinstance(p, str) and p)
        if found:
            text = found
    # Redacted before it is cut short: half a key would no longer be found.
    return redact(text, secrets, limit=200)
