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

from typing import TYPE_CHECKING

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from vocalis.providers.base import ErrorKind, ProviderError, describe_cause
from vocalis.providers.redact import RedactingLogger
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
            logger=RedactingLogger("websockets.client", [key, *secrets_of(tts)]),
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
