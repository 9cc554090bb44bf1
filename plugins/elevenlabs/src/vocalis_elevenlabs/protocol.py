"""The ElevenLabs text-to-speech wire format: URLs, client messages, server messages.

Two endpoints are spoken:

- ``GET /v1/text-to-speech/{voice_id}/stream-input`` (WebSocket, "input
  streaming"): the client sends ``{"text": " ", "voice_settings": ...,
  "generation_config": ...}`` first, then ``{"text": "<words> "}`` as the
  LLM writes them (``"flush": true`` at a sentence end) and ``{"text": ""}``
  to end; the server answers ``{"audio": <base64>, "alignment": ...,
  "normalizedAlignment": ...}`` messages and a last ``{"isFinal": true}``.
- ``POST /v1/text-to-speech/{voice_id}/stream`` (HTTP): one text in, the
  audio streamed back as the response body.

The key travels in the ``xi-api-key`` header of both. Audio is requested as
raw 16-bit little-endian mono PCM (``output_format=pcm_<rate>``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlencode

OutputFormat = Literal["pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000", "pcm_44100", "pcm_48000"]
"""The raw PCM output formats; the number is the sample rate."""

END_OF_INPUT = json.dumps({"text": ""})
"""The message that ends the input: the server speaks what it holds, then ``isFinal``."""

KEEP_ALIVE = json.dumps({"text": " "})
"""A message that resets the server's inactivity timer without adding words."""

# Names an alignment's arrays go by: the reference documents
# ``charsDurationsMs``, some servers and SDKs send ``charDurationsMs``, and the
# generated SDK types use snake case.
_STARTS = ("charStartTimesMs", "char_start_times_ms", "charsStartTimesMs")
_DURATIONS = ("charsDurationsMs", "charDurationsMs", "chars_durations_ms", "char_durations_ms")


class ProtocolError(ValueError):
    """A server message that does not follow the protocol."""


def sample_rate_of(output_format: str) -> int:
    """The sample rate of a ``pcm_<rate>`` output format."""
    return int(output_format.removeprefix("pcm_"))


def websocket_url(base_url: str, voice_id: str, query: Mapping[str, str]) -> str:
    """The input-streaming URL: ``ws(s)://<host>/v1/text-to-speech/<voice>/stream-input?...``.

    Args:
        base_url: The API root, ``https://...`` or ``wss://...`` (the scheme
            is turned into its WebSocket counterpart).
        voice_id: The voice.
        query: Query parameters, already as strings.
    """
    root = base_url.rstrip("/")
    if root.startswith("https://"):
        root = "wss://" + root.removeprefix("https://")
    elif root.startswith("http://"):
        root = "ws://" + root.removeprefix("http://")
    return f"{root}/v1/text-to-speech/{quote(voice_id, safe='')}/stream-input?{urlencode(query)}"


def _http_root(base_url: str) -> str:
    root = base_url.rstrip("/")
    if root.startswith("wss://"):
        return "https://" + root.removeprefix("wss://")
    if root.startswith("ws://"):
        return "http://" + root.removeprefix("ws://")
    return root


def http_url(base_url: str, voice_id: str, query: Mapping[str, str]) -> str:
    """The streaming speech URL: ``http(s)://<host>/v1/text-to-speech/<voice>/stream?...``."""
    return f"{_http_root(base_url)}/v1/text-to-speech/{quote(voice_id, safe='')}/stream?{urlencode(query)}"


def voice_url(base_url: str, voice_id: str) -> str:
    """The voice's URL, ``http(s)://<host>/v1/voices/<voice>`` (checked by ``prewarm``)."""
    return f"{_http_root(base_url)}/v1/voices/{quote(voice_id, safe='')}"


def init_message(voice_settings: Mapping[str, object] | None, chunk_length_schedule: list[int] | None) -> str:
    """The first message: a single space, and the settings that hold for the whole stream."""
    message: dict[str, object] = {"text": " "}
    if voice_settings:
        message["voice_settings"] = dict(voice_settings)
    if chunk_length_schedule:
        message["generation_config"] = {"chunk_length_schedule": list(chunk_length_schedule)}
    return json.dumps(message)


def text_message(text: str, *, flush: bool = False) -> str:
    """Words for the server's buffer, ending with the single space the API asks for.

    ``flush`` makes the server speak everything it holds now (a sentence end).
    The text is never empty: an empty text would end the input.
    """
    text = text.strip() + " "
    message: dict[str, object] = {"text": text}
    if flush:
        message["flush"] = True
    return json.dumps(message)


@dataclass(frozen=True, slots=True)
class Alignment:
    """Character timings of one audio chunk, in milliseconds from the chunk's start.

    Attributes:
        chars: The characters, spaces and punctuation included.
        starts_ms: When each character starts.
        durations_ms: How long each character lasts.
    """

    chars: tuple[str, ...]
    starts_ms: tuple[float, ...]
    durations_ms: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ServerMessage:
    """One message of the input-streaming socket, decoded.

    Attributes:
        audio: The chunk's PCM (empty when the message has none).
        alignment: Timings of the text as sent, if given.
        normalized_alignment: Timings of the normalised text (numbers
            spelled out, ...), if given.
        is_final: The server has spoken everything: the stream is over.
        error: The server's error code (``input_timeout_exceeded``,
            ``quota_exceeded``, ...) when the message reports a failure.
        error_message: The server's description of that failure.
        ignored: Why (part of) the message was left unused: a message that
            is not a JSON object, or an alignment that cannot be read. The
            audio of such a message is still played; only its timings are lost.
    """

    audio: bytes = b""
    alignment: Alignment | None = None
    normalized_alignment: Alignment | None = None
    is_final: bool = False
    error: str | None = None
    error_message: str = ""
    ignored: str = ""


def parse_server_message(raw: str) -> ServerMessage:
    """Decode a text frame of the input-streaming socket.

    What cannot be used is left out and said in ``ignored`` rather than
    failing the stream: a frame that is not a JSON object (a message type
    this client does not know), or an alignment whose lists are missing,
    null or of different lengths (the audio still plays, unlabelled).

    Raises:
        ProtocolError: ``audio`` that is not base64 text: the audio itself
            would be lost.
    """
    try:
        data = json.loads(raw)
    except ValueError:
        return ServerMessage(ignored=f"a message that is not JSON: {raw[:80]!r}")
    if not isinstance(data, dict):
        return ServerMessage(ignored=f"a message that is not a JSON object: {type(data).__name__}")
    error = _error_of(data)
    if error is not None:
        return ServerMessage(error=error[0], error_message=error[1])
    audio = data.get("audio")
    if audio is not None and not isinstance(audio, str):
        raise ProtocolError(f"'audio' is {type(audio).__name__}, not base64 text")
    try:
        pcm = base64.b64decode(audio, validate=True) if audio else b""
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError("'audio' is not valid base64") from exc
    notes: list[str] = []
    alignment = _alignment(data.get("alignment"), "alignment", notes)
    normalized = _alignment(data.get("normalizedAlignment"), "normalizedAlignment", notes)
    return ServerMessage(
        audio=pcm,
        alignment=alignment,
        normalized_alignment=normalized,
        is_final=data.get("isFinal") is True or data.get("is_final") is True,
        ignored="; ".join(notes),
    )


def _error_of(data: dict[str, Any]) -> tuple[str, str] | None:
    """``(code, message)`` of an error message, e.g. ``{"error": "input_timeout_exceeded", "message": ...}``."""
    error = data.get("error")
    if error is None or error is False or error == "":
        return None
    message = data.get("message")
    if isinstance(error, dict):
        # The current error shape names it by "code"; "status" is its legacy twin.
        code = error.get("code") or error.get("status") or error.get("type") or "error"
        message = message or error.get("message")
        return str(code), str(message or "")
    return str(error), str(message or "")


def _alignment(value: object, name: str, notes: list[str]) -> Alignment | None:
    """The alignment ``value``, or None (with a note) when it cannot be used."""
    if value is None:
        return None
    if not isinstance(value, dict):
        notes.append(f"'{name}' is {type(value).__name__}, not an object")
        return None
    chars = value.get("chars")
    starts = next((value[key] for key in _STARTS if value.get(key) is not None), None)
    durations = next((value[key] for key in _DURATIONS if value.get(key) is not None), None)
    if not isinstance(chars, list) or not isinstance(starts, list):
        notes.append(f"'{name}' lacks its 'chars' or 'charStartTimesMs' list")
        return None
    if durations is None:
        durations = [0] * len(chars)
    if not isinstance(durations, list) or not len(chars) == len(starts) == len(durations):
        notes.append(f"'{name}' has lists of different lengths")
        return None
    if not all(isinstance(c, str) for c in chars) or not all(_number(t) for t in (*starts, *durations)):
        notes.append(f"'{name}' holds values of the wrong types")
        return None
    # An entry may hold several characters: each gets the entry's start, the
    # last one its duration, so that positions keep counting characters.
    out_chars: list[str] = []
    out_starts: list[float] = []
    out_durations: list[float] = []
    for text, start, duration in zip(chars, starts, durations, strict=True):
        for index, char in enumerate(text):
            out_chars.append(char)
            out_starts.append(float(start))
            out_durations.append(float(duration) if index == len(text) - 1 else 0.0)
    return Alignment(tuple(out_chars), tuple(out_starts), tuple(out_durations))


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
