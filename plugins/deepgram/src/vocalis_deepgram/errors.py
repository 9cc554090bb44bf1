"""Turn Deepgram's failures into labelled :class:`ProviderError`s.

Failures are sorted by what the protocol says, never by message text:

- an HTTP status (a REST reply, or a refused WebSocket upgrade, whose body
  and ``dg-error`` header carry Deepgram's ``err_code``/``err_msg``);
- a WebSocket close code and its reason, which Deepgram sets to an error
  code: ``1008 DATA-0000`` (the payload is not audio of the declared
  encoding), ``1003``/``1009`` (a message of the wrong kind or too big),
  ``1011 NET-0000`` (Deepgram sent nothing in time), ``1011 NET-0001`` (it
  received no audio or ``KeepAlive`` for 10 s);
- the exception of the client library (connection refused, reset, timeout).

Bad keys, exhausted credit (402), bad parameters and undecodable audio will
fail the same way next time: not recoverable. Rate limits, server errors,
timeouts and dropped connections are.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

import aiohttp

from vocalis.providers.base import ErrorKind, Provider, ProviderError
from vocalis_deepgram.client import describe

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})

# Close codes after which the same request fails again (RFC 6455 section 7.4.1).
_FATAL_CLOSE = {
    1002: "protocol error",
    1003: "message of a kind the server does not take",
    1007: "message that is not valid for its type",
    1008: "data the server could not use",
    1009: "message too big",
    1010: "missing extension",
}


def status_error(provider: Provider, status: int, body: str | bytes, headers: Mapping[str, str]) -> ProviderError:
    """The error of an HTTP error reply (or of a refused WebSocket upgrade).

    Args:
        provider: The provider that made the request.
        status: The HTTP status.
        body: The reply's body (Deepgram's ``{"err_code", "err_msg", "request_id"}``).
        headers: The reply's headers (``dg-error`` repeats the message).
    """
    recoverable = status in _RETRYABLE_STATUS or status >= 500
    kind = ErrorKind.of_status(status)
    if kind is ErrorKind.UNKNOWN and 400 <= status < 500:
        kind = ErrorKind.BAD_REQUEST
    detail = _body_detail(body) or headers.get("dg-error", "")
    request_id = headers.get("dg-request-id", "")
    # The request id (for Deepgram's support) comes right after the status, so
    # the message ends with what the user acts on: the server's words, a hint.
    message = f"HTTP {status}" + (f" (request {describe(provider, request_id)})" if request_id else "")
    if detail:
        message += f": {describe(provider, detail).rstrip('. ')}"
    if status == 401:
        prefix = provider.settings.model_config.get("env_prefix", "")
        message += f"; check {prefix}API_KEY or DEEPGRAM_API_KEY"
    return provider.error(message, recoverable=recoverable, kind=kind)


def close_error(provider: Provider, code: int | None, reason: str, *, what: str = "connection") -> ProviderError:
    """The error of a WebSocket the server closed when it should not have.

    Args:
        provider: The provider whose socket closed.
        code: The close code, None when the connection dropped without one.
        reason: The close reason (Deepgram puts its error code there).
        what: What closed, for the message.
    """
    reason = describe(provider, reason) if reason else ""
    how = "no close frame" if code is None else f"code {code}" + (f" {reason}" if reason else "")
    if code in _FATAL_CLOSE:
        return provider.error(
            f"the server closed the {what} ({how}: {_FATAL_CLOSE[code]})",
            recoverable=False,
            kind=ErrorKind.BAD_REQUEST,
        )
    if code == 1011 and reason.startswith("NET-0001"):
        message = f"the server closed the {what} ({how}): it received no audio or KeepAlive in time"
        return provider.error(message, recoverable=True, kind=ErrorKind.TIMEOUT)
    if code == 1011 and reason.startswith("NET-"):
        message = f"the server closed the {what} ({how}): it could not answer in time"
        return provider.error(message, recoverable=True, kind=ErrorKind.TIMEOUT)
    if code is None or code == 1006:
        return provider.error(f"the {what} dropped ({how})", recoverable=True, kind=ErrorKind.CONNECTION)
    if code in (1011, 1012, 1013, 1014, 1001):
        return provider.error(f"the server closed the {what} ({how})", recoverable=True, kind=ErrorKind.SERVER)
    return provider.error(f"the server closed the {what} unexpectedly ({how})", recoverable=True)


def message_error(provider: Provider, message: Mapping[str, object]) -> ProviderError:
    """The error of an ``Error`` message sent on an open socket.

    Deepgram sends ``{"type": "Error", "variant", "description", "message"}``
    when it could not use a client message (``SchemaError``) and may send it
    before closing; the close that follows decides whether the stream ends.
    """
    variant = str(message.get("variant") or message.get("err_code") or "Error")
    text = str(message.get("description") or message.get("err_msg") or "")
    detail = f"{variant}: {text}" if text else variant
    return provider.error(f"error message from the server: {describe(provider, detail)}", recoverable=False)


def exception_error(provider: Provider, exc: BaseException, *, started: bool, what: str = "request") -> ProviderError:
    """A :class:`ProviderError` for anything the HTTP or WebSocket client raised.

    Args:
        provider: The provider that failed.
        exc: What was raised.
        started: Whether the reply had started (headers in, body streaming).
        what: What failed, for the message (``"request"``, ``"connection"``).

    Returns:
        The error to raise; a :class:`ProviderError` is returned as it is.
    """
    from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, InvalidStatus):
        response = exc.response
        return status_error(provider, response.status_code, bytes(response.body or b""), response.headers)
    if isinstance(exc, ConnectionClosed):
        frame = exc.rcvd
        return close_error(provider, frame.code if frame else None, frame.reason if frame else "", what=what)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        seconds = getattr(provider.settings, "timeout", None)
        within = f"{seconds:g} s" if isinstance(seconds, int | float) else "the timeout"
        if started:
            return provider.error(
                f"the stream stalled: nothing arrived for {within}", recoverable=True, kind=ErrorKind.STALLED
            )
        return provider.error(f"{what} timed out: no answer within {within}", recoverable=True, kind=ErrorKind.TIMEOUT)
    if isinstance(exc, InvalidURI | aiohttp.InvalidURL):
        return provider.error(f"invalid URL: {describe(provider, exc)}", recoverable=False, kind=ErrorKind.BAD_REQUEST)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError) or (
        started and isinstance(exc, aiohttp.ClientConnectionError | ConnectionError)
    ):
        return provider.error(
            f"connection lost mid-stream ({type(exc).__name__})", recoverable=True, kind=ErrorKind.CONNECTION
        )
    if isinstance(exc, aiohttp.ClientConnectionError | OSError | WebSocketException):
        detail = describe(provider, exc)
        text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        return provider.error(f"{what} failed ({text})", recoverable=True, kind=ErrorKind.CONNECTION)
    if isinstance(exc, ValueError):  # json.JSONDecodeError: a reply that is not JSON
        return provider.error(f"malformed reply ({type(exc).__name__})", recoverable=True, kind=ErrorKind.PROTOCOL)
    return provider.error(f"unexpected failure ({type(exc).__name__}: {describe(provider, exc)})")


def _body_detail(body: str | bytes) -> str:
    """``err_code: err_msg`` of a Deepgram error body, or the body's text."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    if not text:
        return ""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict):
        code = data.get("err_code") or data.get("category") or ""
        message = data.get("err_msg") or data.get("message") or data.get("details") or ""
        if code or message:
            return f"{code}: {message}" if code and message else str(code or message)
    return text
