"""What Cartesia is sent: the endpoints' URLs, the headers and each message's JSON.

Written from Cartesia's API reference: the WebSocket endpoint
``/tts/websocket`` (generation requests with ``context_id`` and
``continue``, manual flushes, ``{"context_id", "cancel": true}``) and the
HTTP endpoint ``POST /tts/bytes``. Every request carries the API version
(``Cartesia-Version``, also as the ``cartesia_version`` query parameter of the
WebSocket, which wins there) and the key (``Authorization: Bearer`` and the
older ``X-API-Key``; on the WebSocket also the ``api_key`` query parameter
of the earlier reference, unless turned off).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

API_ROOT = "https://api.cartesia.ai"
"""Cartesia's API root."""

WEBSOCKET_PATH = "/tts/websocket"
BYTES_PATH = "/tts/bytes"

SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
"""The output rates the API offers for raw PCM."""

_HTTP_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def endpoint(base_url: str, path: str, *, websocket: bool, query: Mapping[str, str] | None = None) -> str:
    """The URL of ``path`` under ``base_url``, with the scheme of its protocol.

    A base URL may carry a path (a gateway's prefix) and query parameters of
    its own; both are kept.

    Args:
        base_url: The API root, ``http(s)://`` or ``ws(s)://``.
        path: The endpoint's path, e.g. ``/tts/websocket``.
        websocket: Whether the URL is for a WebSocket (``ws(s)://``).
        query: Query parameters to add.
    """
    parts = urlsplit(base_url)
    schemes = _WS_SCHEMES if websocket else _HTTP_SCHEMES
    scheme = schemes.get(parts.scheme.lower(), parts.scheme)
    params = parse_qsl(parts.query, keep_blank_values=True)
    params += list((query or {}).items())
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, urlencode(params), ""))


def auth_headers(api_key: str, cartesia_version: str) -> dict[str, str]:
    """The headers of every request: the version and the key.

    The key goes both as ``Authorization: Bearer`` (the current reference)
    and as ``X-API-Key`` (the earlier one, which gateways still expect).
    """
    return {
        "Cartesia-Version": cartesia_version,
        "Authorization": f"Bearer {api_key}",
        "X-API-Key": api_key,
    }


@dataclass(frozen=True, slots=True)
class Voice:
    """What a generation is spoken with; the same for every input of a context.

    Attributes:
        model_id: The model, e.g. ``sonic-3``.
        voice_id: The voice's id.
        sample_rate: Rate of the raw 16-bit PCM asked for.
        language: The language code, or None to leave it to the model.
        generation_config: Sonic-3 controls (``speed``, ``volume``,
            ``emotion``), sent as they are; None sends none.
    """

    model_id: str
    voice_id: str
    sample_rate: int
    language: str | None = None
    generation_config: Mapping[str, Any] | None = None

    def body(self, transcript: str) -> dict[str, Any]:
        """The fields every generation request has, for ``transcript``."""
        body: dict[str, Any] = {
            "model_id": self.model_id,
            "transcript": transcript,
            "voice": {"mode": "id", "id": self.voice_id},
            "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": self.sample_rate},
        }
        if self.language:
            body["language"] = self.language
        if self.generation_config:
            body["generation_config"] = dict(self.generation_config)
        return body


@dataclass(frozen=True, slots=True)
class ContextMessages:
    """The messages of one WebSocket context.

    Every input of a context must repeat the same fields but for
    ``transcript``, ``continue`` (and ``flush``, on a flush), so each message
    is built from the same base.

    Attributes:
        voice: The generation's fields.
        context_id: The context.
        add_timestamps: Whether word timestamps are asked for.
        max_buffer_delay_ms: How long the server may hold text before it
            speaks (None: not sent; the flush after each sentence speaks
            what it holds anyway).
        normalized_timestamps: With timestamps, whether their words are
            the normalised transcript's (numbers spelled out...) rather
            than the words as sent. The words as sent (False) match the
            text the session keeps when a sentence is cut short.
    """

    voice: Voice
    context_id: str
    add_timestamps: bool = True
    max_buffer_delay_ms: int | None = None
    normalized_timestamps: bool = False

    def _base(self, transcript: str, *, more: bool) -> dict[str, Any]:
        body = self.voice.body(transcript)
        body["context_id"] = self.context_id
        body["continue"] = more
        if self.add_timestamps:
            body["add_timestamps"] = True
            body["use_normalized_timestamps"] = self.normalized_timestamps
        if self.max_buffer_delay_ms is not None:
            body["max_buffer_delay_ms"] = self.max_buffer_delay_ms
        return body

    def text(self, transcript: str) -> dict[str, Any]:
        """More text for the context (``continue: true``)."""
        return self._base(transcript, more=True)

    def flush(self) -> dict[str, Any]:
        """A manual flush: the audio of the text so far is generated now and
        later audio carries the next ``flush_id``, which maps chunks to sentences."""
        body = self._base("", more=True)
        body["flush"] = True
        return body

    def close(self) -> dict[str, Any]:
        """The end of the context's input: an empty transcript, ``continue: false``."""
        return self._base("", more=False)

    def cancel(self) -> dict[str, Any]:
        """Stop the context's generation: nothing more is sent for it."""
        return {"context_id": self.context_id, "cancel": True}
