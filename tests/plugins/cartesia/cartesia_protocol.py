"""The rules of Cartesia's TTS API that the test server enforces, and its fake audio.

Written from Cartesia's public API reference and guides (docs.cartesia.ai):

- API conventions: every request carries ``Cartesia-Version`` (the WebSocket
  may take ``?cartesia_version=`` instead, which wins); the key goes as
  ``Authorization: Bearer <key>``, or ``X-API-Key`` (HTTP) / ``?api_key=``
  (WebSocket) in earlier versions, or ``?access_token=`` from browsers.
- Text to Speech (WebSocket) ``/tts/websocket``: text frames of JSON; a
  generation request has ``model_id``, ``transcript``, ``voice``
  (``{"mode": "id", "id"}``), ``output_format`` (``container: raw``, an
  encoding, a sample rate of 8000/16000/22050/24000/44100/48000) and
  ``context_id``; optional ``language``, ``continue``, ``flush``,
  ``add_timestamps``, ``max_buffer_delay_ms`` (0..5000), ``generation_config``...
  A cancel is exactly ``{"context_id", "cancel": true}``. Responses:
  ``chunk`` (base64 ``data``, ``step_time``, ``flush_id``), ``timestamps``
  (``word_timestamps: {words, start, end}`` in seconds of the context's
  audio, sent as the audio they time goes out), ``flush_done``, ``done``,
  ``error`` (``status_code`` and ``error``, or ``title``/``message``/``error_code``).
  The SDK generated from the API's spec (``cartesia-python``: ``GenerationRequest``
  with ``use_normalized_timestamps``, ``WebsocketResponse``) has the same shapes.
- Contexts guide: inputs of a context keep every field but ``transcript``,
  ``continue`` and ``duration`` the same; transcripts are joined verbatim
  (the client supplies the spaces); an empty transcript with
  ``continue: false`` ends a context whose last input was not known.
- Context flushing guide: a flush is ``continue: true``, ``flush: true`` and
  an empty transcript; audio after the n-th flush carries ``flush_id`` n+1.
- Text to Speech (Bytes) ``POST /tts/bytes``: the same generation fields
  without the context ones; the reply body is the audio itself.
"""

from __future__ import annotations

import functools
import math
import re
import struct
from collections.abc import Mapping
from typing import Any

SAMPLE_RATES = frozenset({8000, 16000, 22050, 24000, 44100, 48000})
ENCODINGS = frozenset({"pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"})
VERSIONS = frozenset({"2024-06-10", "2024-11-13", "2025-04-16", "2026-03-01", "2026-08-14"})
WORD_SECONDS = 0.12
"""Audio made per word of a transcript."""
VOICED_SECONDS = 0.09
"""The voiced part of a word's audio; the pause after it fills the rest."""

# Fields a generation request may have, with their types (the reference's).
_COMMON: dict[str, type | tuple[type, ...]] = {
    "model_id": str,
    "transcript": str,
    "voice": dict,
    "output_format": dict,
    "language": str,
    "generation_config": dict,
    "speed": (str, int, float),
    "duration": (int, float),
    "pronunciation_dict_id": str,
}
WEBSOCKET_FIELDS: dict[str, type | tuple[type, ...]] = {
    **_COMMON,
    "context_id": str,
    "continue": bool,
    "flush": bool,
    "add_timestamps": bool,
    "add_phoneme_timestamps": bool,
    "use_normalized_timestamps": bool,
    "max_buffer_delay_ms": int,
    "stream": bool,
}
BYTES_FIELDS: dict[str, type | tuple[type, ...]] = {**_COMMON}
# What may change between the inputs of one context.
_PER_INPUT = frozenset({"transcript", "continue", "duration", "flush"})


def words(transcript: str) -> list[str]:
    """The words the fake model speaks."""
    return re.findall(r"[\w']+", transcript)


@functools.cache
def _tone(step: int, sample_rate: int) -> bytes:
    pitch = 220.0 + 40.0 * step
    count, voiced = int(sample_rate * WORD_SECONDS), int(sample_rate * VOICED_SECONDS)
    samples = (int(8000 * math.sin(2 * math.pi * pitch * n / sample_rate)) if n < voiced else 0 for n in range(count))
    return struct.pack(f"<{count}h", *samples)


def speech_pcm(transcript: str, sample_rate: int = 24_000) -> bytes:
    """The fake model's audio for a transcript: a tone per word then a pause, 16-bit LE mono."""
    return b"".join(_tone(index % 7, sample_rate) for index, _ in enumerate(words(transcript)))


def word_times(transcript: str, offset: float = 0.0) -> list[tuple[str, float, float]]:
    """``(word, start, end)`` of each word of :func:`speech_pcm`'s audio, ``offset`` seconds on.

    A word is heard from the start of its tone to the end of its voiced part.
    """
    return [
        (word, offset + index * WORD_SECONDS, offset + index * WORD_SECONDS + VOICED_SECONDS)
        for index, word in enumerate(words(transcript))
    ]


def auth_problem(headers: Mapping[str, str], query: Mapping[str, str], api_key: str) -> str | None:
    """Why a request's credentials are refused ("" when none were sent), or None."""
    sent = [
        headers.get("Authorization", "").removeprefix("Bearer ").strip() if "Authorization" in headers else None,
        headers.get("X-API-Key"),
        query.get("api_key"),
        query.get("access_token"),
    ]
    given = [value for value in sent if value is not None]
    if not given:
        return ""
    return None if all(value == api_key for value in given) else "wrong key"


def version_problem(headers: Mapping[str, str], query: Mapping[str, str], *, websocket: bool) -> str | None:
    """What is wrong with the request's API version, or None."""
    version = (query.get("cartesia_version") if websocket else None) or headers.get("Cartesia-Version")
    if not version:
        return "no Cartesia-Version header" + (" or cartesia_version query parameter" if websocket else "")
    return None if version in VERSIONS else f"unknown API version {version!r}"


def generation_problems(body: Any, *, websocket: bool) -> list[str]:
    """What breaks the reference's rules in one generation request."""
    if not isinstance(body, dict):
        return [f"a request must be a JSON object, not {type(body).__name__}"]
    allowed = WEBSOCKET_FIELDS if websocket else BYTES_FIELDS
    problems = [f"unknown field {key!r}" for key in body if key not in allowed]
    required = ["model_id", "transcript", "voice", "output_format"] + (["context_id"] if websocket else [])
    problems += [f"missing field {key!r}" for key in required if key not in body]
    for key, kind in allowed.items():
        value = body.get(key)
        if key in body and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            problems.append(f"{key!r} has the wrong type ({type(value).__name__})")
    if problems:
        return problems
    voice = body["voice"]
    if voice.get("mode") != "id" or not isinstance(voice.get("id"), str) or not voice["id"] or len(voice) != 2:
        problems.append(f"voice must be {{'mode': 'id', 'id': <voice id>}}, not {voice!r}")
    fmt = body["output_format"]
    containers = {"raw"} if websocket else {"raw", "wav", "mp3"}
    if fmt.get("container") not in containers:
        problems.append(f"output_format.container must be one of {sorted(containers)}")
    if fmt.get("container") in ("raw", "wav") and fmt.get("encoding") not in ENCODINGS:
        problems.append(f"output_format.encoding must be one of {sorted(ENCODINGS)}")
    if fmt.get("sample_rate") not in SAMPLE_RATES:
        problems.append(f"output_format.sample_rate must be one of {sorted(SAMPLE_RATES)}")
    if not body["model_id"]:
        problems.append("model_id is empty")
    if websocket:
        if not body["context_id"]:
            problems.append("context_id is empty")
        delay = body.get("max_buffer_delay_ms", 0)
        if not 0 <= delay <= 5000:
            problems.append("max_buffer_delay_ms must be within 0..5000")
        more, flush = body.get("continue", False), body.get("flush", False)
        if flush and (not more or body["transcript"]):
            problems.append("a flush has continue: true and an empty transcript")
        if more and not flush and not body["transcript"]:
            problems.append("an empty transcript with continue: true (and no flush) says nothing")
    elif not body["transcript"].strip():
        problems.append("the transcript is empty")
    return problems


def continuation_problems(first: dict[str, Any], later: dict[str, Any], previous_text: str) -> list[str]:
    """What breaks the contexts guide when ``later`` follows inputs of the same context."""
    problems = [
        f"{key!r} changed within the context ({first.get(key)!r} -> {later.get(key)!r})"
        for key in sorted(set(first) | set(later))
        if key not in _PER_INPUT and first.get(key) != later.get(key)
    ]
    text = later.get("transcript", "")
    if previous_text and text and not previous_text[-1].isspace() and text[0].isalnum():
        problems.append(f"transcripts are joined verbatim: {previous_text[-12:]!r} + {text[:12]!r} runs words together")
    return problems


def cancel_problems(body: dict[str, Any]) -> list[str]:
    """What is wrong with a cancel message (exactly ``context_id`` and ``cancel: true``)."""
    if set(body) != {"context_id", "cancel"} or body["cancel"] is not True or not isinstance(body["context_id"], str):
        return [f"a cancel is exactly {{'context_id': <id>, 'cancel': true}}, not {body!r}"]
    return []


def error_message(context_id: str | None, status: int, text: str, *, style: str) -> dict[str, Any]:
    """An ``error`` message, in the shape of an API version (``"2025"`` or ``"2026"``)."""
    message: dict[str, Any] = {"type": "error", "done": True, "status_code": status}
    if context_id is not None:
        message["context_id"] = context_id
    if style == "2026":
        message.update({"title": "Request failed", "message": text, "error_code": f"http_{status}"})
    else:
        message["error"] = text
    return message
