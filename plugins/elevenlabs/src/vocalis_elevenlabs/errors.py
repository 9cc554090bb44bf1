"""Turn ElevenLabs failures into labelled :class:`ProviderError`s.

Failures are sorted by HTTP status, WebSocket close code and the API's own
error code (``detail.status`` of an HTTP error body, ``error`` of a socket
error message: ``invalid_api_key``, ``quota_exceeded``,
``input_timeout_exceeded``, ...). The input-streaming socket closes with
1008 (policy violation) for a refused key, an exhausted quota, an idle
input and some server faults alike, with no error message before it at
times; only then is the close reason's wording looked at, as a last resort.

Auth, quota and bad requests are not recoverable (a retry fails the same
way); rate limits, timeouts, dropped connections and server errors are.
"""

from __future__ import annotations

import json

import aiohttp

from vocalis.providers.base import ErrorKind, Provider, ProviderError, describe_cause
from vocalis.providers.redact import provider_secrets, redact

# The API's error codes, by kind.
_CODE_KINDS: dict[str, ErrorKind] = {
    "invalid_api_key": ErrorKind.AUTH,
    "missing_api_key": ErrorKind.AUTH,
    "unauthorized": ErrorKind.AUTH,
    "needs_authorization": ErrorKind.AUTH,
    "missing_permissions": ErrorKind.AUTH,
    "quota_exceeded": ErrorKind.AUTH,  # out of credits: billing, as HTTP 402 is
    "payment_required": ErrorKind.AUTH,
    "detected_unusual_activity": ErrorKind.AUTH,  # the free tier disabled for the account
    "voice_not_found": ErrorKind.BAD_REQUEST,
    "model_not_found": ErrorKind.BAD_REQUEST,
    "invalid_request": ErrorKind.BAD_REQUEST,
    "max_character_limit_exceeded": ErrorKind.BAD_REQUEST,
    "invalid_voice_settings": ErrorKind.BAD_REQUEST,
    "invalid_parameters": ErrorKind.BAD_REQUEST,
    "invalid_input_message": ErrorKind.BAD_REQUEST,  # a socket message the server could not parse
    "text_too_long": ErrorKind.BAD_REQUEST,
    "too_many_concurrent_requests": ErrorKind.RATE_LIMIT,
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "concurrent_limit_exceeded": ErrorKind.RATE_LIMIT,
    "system_busy": ErrorKind.RATE_LIMIT,
    "input_timeout_exceeded": ErrorKind.TIMEOUT,
    "internal_error": ErrorKind.SERVER,
    "internal_server_error": ErrorKind.SERVER,
}

_FATAL = frozenset({ErrorKind.AUTH, ErrorKind.BAD_REQUEST})

# WebSocket close codes other than 1008, by kind.
_CLOSE_KINDS: dict[int, ErrorKind] = {
    1000: ErrorKind.CONNECTION,  # a normal close, but before the end of the audio
    1001: ErrorKind.CONNECTION,  # going away (server restart)
    1002: ErrorKind.PROTOCOL,
    1003: ErrorKind.BAD_REQUEST,  # unsupported data
    1006: ErrorKind.CONNECTION,  # no close frame: the connection dropped
    1007: ErrorKind.BAD_REQUEST,  # invalid payload
    1009: ErrorKind.BAD_REQUEST,  # "message too big", also sent for a voice the model cannot use
    1011: ErrorKind.SERVER,
    1012: ErrorKind.SERVER,  # service restart
    1013: ErrorKind.RATE_LIMIT,  # try again later
    1014: ErrorKind.SERVER,  # bad gateway
}

# Last resort for a bare 1008 close: what its reason says (lower case).
_REASON_KINDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("quota", "credits"), "quota_exceeded"),
    (("unusual activity",), "detected_unusual_activity"),
    (("could not parse", "schema"), "invalid_input_message"),
    (("api key", "api_key", "unauthori", "authenticat", "permission"), "invalid_api_key"),
    (("have not received", "timeout", "timed out"), "input_timeout_exceeded"),
    (("voice", "model"), "invalid_request"),
    (("something went wrong", "internal"), "internal_error"),
    (("concurren", "too many", "busy"), "too_many_concurrent_requests"),
)


def secrets_of(provider: Provider) -> list[str]:
    """The credentials a provider holds, to take out of the text of its errors."""
    return provider_secrets([provider])


def missing_key_error(provider: Provider) -> ProviderError:
    """The error for a provider without an API key (not recoverable)."""
    return provider.error(
        # No "api_key=..." in the text: redaction would take it for a key.
        "no API key: set VOCALIS_TTS_ELEVENLABS_API_KEY (or ELEVENLABS_API_KEY), or pass the api_key argument",
        recoverable=False,
        kind=ErrorKind.AUTH,
    )


def network_error(provider: Provider, exc: BaseException, timeout: float, *, started: bool = False) -> ProviderError:
    """The error of an HTTP request that failed in the network, not by its reply's status.

    Args:
        provider: The provider that failed.
        exc: What ``aiohttp`` or the socket raised.
        timeout: The seconds that ran out, for a timeout.
        started: Whether audio had begun to arrive (a stall, a drop mid-audio).
    """
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        if started:
            return provider.error(f"the audio stalled: nothing arrived for {timeout:g} s", kind=ErrorKind.STALLED)
        return provider.error(f"no answer within {timeout:g} s", kind=ErrorKind.TIMEOUT)
    what = "connection lost mid-audio" if started else "connection failed"
    return provider.error(f"{what}{describe_cause(exc, secrets_of(provider))}", kind=ErrorKind.CONNECTION)


def code_error(provider: Provider, code: str, message: str, *, where: str) -> ProviderError:
    """An error the API named by its code (``quota_exceeded``, ...).

    Args:
        provider: The provider that failed.
        code: The API's error code.
        message: The API's description (redacted here).
        where: What failed, e.g. ``"HTTP 401"`` or ``"WebSocket closed (1008)"``.
    """
    kind = _CODE_KINDS.get(code, ErrorKind.UNKNOWN)
    text = redact(message, secrets_of(provider), limit=300)
    return provider.error(
        f"{where} {code}" + (f": {text}" if text else ""),
        recoverable=kind not in _FATAL,
        kind=kind,
    )


def http_error(provider: Provider, status: int, body: object) -> ProviderError:
    """The error of an HTTP reply with an error status.

    Args:
        provider: The provider that failed.
        status: The HTTP status.
        body: The decoded JSON body (``{"detail": {"status": ..., "message": ...}}``
            or a validation error list), or the body's text.
    """
    code, message = _detail(body)
    if code in _CODE_KINDS:
        return code_error(provider, code, message, where=f"HTTP {status}")
    kind = ErrorKind.of_status(status)
    if kind is ErrorKind.UNKNOWN and 400 <= status < 500:
        kind = ErrorKind.BAD_REQUEST
    recoverable = status in (408, 409, 429) or status >= 500
    text = redact(message, secrets_of(provider), limit=300)
    label = f"HTTP {status}" + (f" {code}" if code else "")
    return provider.error(label + (f": {text}" if text else ""), recoverable=recoverable, kind=kind)


def handshake_error(provider: Provider, status: int, body: str = "") -> ProviderError:
    """The error of a refused WebSocket handshake (an HTTP status instead of 101)."""
    parsed: object = body
    if body.lstrip().startswith("{"):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body
    error = http_error(provider, status, parsed)
    return provider.error(
        f"WebSocket handshake refused: {error.args[0]}", recoverable=error.recoverable, kind=error.kind
    )


def close_error(
    provider: Provider, code: int | None, reason: str, server_error: tuple[str, str] | None
) -> ProviderError:
    """The error of a socket that closed before the audio was complete.

    Args:
        provider: The provider that failed.
        code: The close code (None: the connection dropped without one).
        reason: The close reason.
        server_error: ``(code, message)`` of the error message the server
            sent just before closing, if it sent one.
    """
    where = f"WebSocket closed ({code})" if code is not None else "WebSocket connection lost"
    if server_error is not None:
        return code_error(provider, server_error[0], server_error[1] or reason, where=where)
    if code == 1008:
        lowered = reason.lower()
        for words, api_code in _REASON_KINDS:
            if any(word in lowered for word in words):
                return code_error(provider, api_code, reason, where=where)
    kind = _CLOSE_KINDS.get(code or 1006, ErrorKind.UNKNOWN)
    text = redact(reason, secrets_of(provider), limit=300)
    return provider.error(where + (f": {text}" if text else ""), recoverable=kind not in _FATAL, kind=kind)


def _detail(body: object) -> tuple[str, str]:
    """``(code, message)`` of an HTTP error body."""
    if isinstance(body, dict):
        detail = body.get("detail", body)
        if isinstance(detail, dict):
            # The current shape names the error by "code"; "status" is its legacy twin.
            code = detail.get("code") or detail.get("status") or detail.get("type") or ""
            return str(code), str(detail.get("message") or "")
        if isinstance(detail, list):  # FastAPI validation errors
            parts = [str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail]
            return "", "; ".join(parts)
        if isinstance(detail, str):
            return "", detail
    if isinstance(body, str):
        return "", body.strip()
    return "", ""
