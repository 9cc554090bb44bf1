"""Opening the input-streaming socket, and telling "refused" from "cannot be used".

A handshake answered with an HTTP status other than 101 is refused: 401 is
a bad key and 429 too many connections, and HTTP would fare no better, but
anything else (403 for a model the socket does not serve, 404, 5xx from a
gateway) or a handshake a proxy spoiled means the WebSocket cannot be used
while the HTTP API still may be: in ``auto`` mode the stream then speaks
over HTTP instead (:class:`WebSocketUnavailable`).

At DEBUG, websockets logs each handshake header (``xi-api-key`` included)
and each frame: the socket gets a :class:`RedactingLogger`, which takes the
key out before any handler sees the record.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import Frame, Opcode

from vocalis.providers.base import ErrorKind, ProviderError, describe_cause
from vocalis.providers.redact import redact
from vocalis_elevenlabs.errors import handshake_error, secrets_of

if TYPE_CHECKING:
    from vocalis_elevenlabs.tts import ElevenLabsTTS

# Statuses whose refusal HTTP would share: the same key, the same account.
_SHARED_REFUSALS = frozenset({401, 402, 429})

MAX_MESSAGE_BYTES = 16 * 2**20
"""Largest server message accepted (base64 audio of a long chunk at 48 kHz is far less)."""


class WebSocketUnavailable(Exception):
    """The WebSocket cannot be used here; the HTTP API may still work.

    Attributes:
        error: The error the stream reports if it may not fall back to HTTP.
    """

    def __init__(self, error: ProviderError) -> None:
        super().__init__(str(error))
        self.error = error


async def open_socket(tts: ElevenLabsTTS, url: str) -> ClientConnection:
    """Connect to ``url`` with the key in the ``xi-api-key`` header.

    Raises:
        WebSocketUnavailable: The handshake was refused in a way HTTP may
            not share (see the module docstring).
        ProviderError: The key was refused, too many connections, or the
            host could not be reached or timed out (HTTP would fail alike).
    """
    timeout = tts.settings.timeout
    key = tts.api_key()
    try:
        return await connect(
            url,
            additional_headers={"xi-api-key": key},
            logger=RedactingLogger([key, *secrets_of(tts)]),
            open_timeout=timeout,
            # An interrupted reply closes its socket: never wait long for the
            # server's half of the closing handshake.
            close_timeout=1.0,
            max_size=MAX_MESSAGE_BYTES,
            # Audio is base64 text: compressing it costs CPU for little gain.
            compression=None,
        )
    except InvalidStatus as exc:
        response = exc.response
        body = response.body.decode("utf-8", "replace") if response.body else ""
        error = handshake_error(tts, response.status_code, body)
        if response.status_code in _SHARED_REFUSALS:
            raise error from exc
        raise WebSocketUnavailable(error) from exc
    except InvalidURI as exc:
        raise tts.error(f"invalid WebSocket URL: {exc}", recoverable=False, kind=ErrorKind.BAD_REQUEST) from exc
    except InvalidHandshake as exc:
        error = tts.error(f"WebSocket handshake failed{describe_cause(exc, secrets_of(tts))}", kind=ErrorKind.PROTOCOL)
        raise WebSocketUnavailable(error) from exc
    except TimeoutError as exc:
        raise tts.error(f"WebSocket handshake timed out after {timeout:g} s", kind=ErrorKind.TIMEOUT) from exc
    except OSError as exc:
        raise tts.error(f"connection failed{describe_cause(exc, secrets_of(tts))}", kind=ErrorKind.CONNECTION) from exc


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """The ``websockets.client`` logger, minus the credentials.

    At DEBUG, websockets logs each header of the handshake (``xi-api-key:
    <key>``) and each frame (a server's error may echo the key): the
    arguments of every record (a text frame's payload, before websockets
    shortens it) are redacted before any handler sees them
    (its format string is websockets' own text). Numbers stay numbers
    (``%d`` formats them).

    Args:
        secrets: The credentials to take out.
    """

    def __init__(self, secrets: list[str]) -> None:
        super().__init__(logging.getLogger("websockets.client"), {})
        self._secrets = secrets

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return msg, kwargs  # keep the caller's ``extra``

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            args = tuple(arg if isinstance(arg, int | float) else self._clean(arg) for arg in args)
            # The record's caller is websockets' code, one frame further up.
            kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
            super().log(level, msg, *args, **kwargs)

    def _clean(self, value: object) -> str:
        if isinstance(value, Frame) and value.opcode is Opcode.TEXT:
            # A frame's rendering is cut short, maybe in the middle of the key
            # (which redacting the rendering would then miss): redact its text first.
            data = redact(bytes(value.data).decode("utf-8", "replace"), self._secrets, limit=None)
            value = dataclasses.replace(value, data=data.encode())
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        return redact(text, self._secrets, limit=None)
