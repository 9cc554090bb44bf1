"""What the ElevenLabs API accepts: the request and message checks of the protocol server.

Written from the public API reference (the AsyncAPI description of
``/v1/text-to-speech/{voice_id}/stream-input`` and the OpenAPI description
of ``POST /v1/text-to-speech/{voice_id}/stream``, as published in the
elevenlabs-docs repository under ``fern/apis/api``). Each check returns the
problems found, worded for a failing test; an empty list means the real
service would take it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OUTPUT_FORMATS = frozenset(
    {
        "mp3_22050_32",
        "mp3_44100_32",
        "mp3_44100_64",
        "mp3_44100_96",
        "mp3_44100_128",
        "mp3_44100_192",
        "pcm_8000",
        "pcm_16000",
        "pcm_22050",
        "pcm_24000",
        "pcm_44100",
        "pcm_48000",
        "ulaw_8000",
        "alaw_8000",
        "opus_48000_64",
    }
)
_BOOL_PARAMS = ("sync_alignment", "auto_mode", "enable_ssml_parsing", "enable_logging")
SOCKET_PARAMS = frozenset(
    {
        "model_id",
        "language_code",
        "enable_logging",
        "enable_ssml_parsing",
        "output_format",
        "inactivity_timeout",
        "sync_alignment",
        "auto_mode",
        "apply_text_normalization",
        "seed",
        "authorization",
    }
)
HTTP_PARAMS = frozenset({"output_format", "enable_logging", "optimize_streaming_latency"})
HTTP_BODY = frozenset(
    {
        "text",
        "model_id",
        "language_code",
        "voice_settings",
        "pronunciation_dictionary_locators",
        "seed",
        "previous_text",
        "next_text",
        "previous_request_ids",
        "next_request_ids",
        "apply_text_normalization",
        "apply_language_text_normalization",
        "use_pvc_as_ivc",
    }
)
_FIRST_KEYS = frozenset(
    {
        "text",
        "voice_settings",
        "generation_config",
        "pronunciation_dictionary_locators",
        "xi_api_key",
        "xi-api-key",
        "authorization",
        "try_trigger_generation",
        "flush",
    }
)
_TEXT_KEYS = frozenset({"text", "try_trigger_generation", "flush"})
_VOICE_KEYS = {"stability": (0.0, 1.0), "similarity_boost": (0.0, 1.0), "style": (0.0, 1.0), "speed": (0.7, 1.2)}


def check_query(query: Mapping[str, str], allowed: frozenset[str]) -> list[str]:
    """Query parameters of either endpoint."""
    problems = [f"unknown query parameter {name!r}" for name in query if name not in allowed]
    fmt = query.get("output_format")
    if fmt is not None and fmt not in OUTPUT_FORMATS:
        problems.append(f"output_format {fmt!r} is not one of the API's formats")
    if fmt is not None and not fmt.startswith("pcm_"):
        problems.append(f"output_format {fmt!r}: the client must ask for raw PCM")
    for name in _BOOL_PARAMS:
        if name in query and query[name] not in ("true", "false"):
            problems.append(f"{name}={query[name]!r} is not a boolean (true/false)")
    if "inactivity_timeout" in query:
        value = query["inactivity_timeout"]
        if not value.isdigit() or not 1 <= int(value) <= 180:
            problems.append(f"inactivity_timeout={value!r} is not an integer from 1 to 180")
    if "apply_text_normalization" in query and query["apply_text_normalization"] not in ("auto", "on", "off"):
        problems.append("apply_text_normalization must be auto, on or off")
    if "seed" in query and (not query["seed"].isdigit() or int(query["seed"]) > 4_294_967_295):
        problems.append("seed must be an integer from 0 to 4294967295")
    if "model_id" in query and not query["model_id"]:
        problems.append("model_id is empty")
    return problems


def check_voice_settings(value: Any, where: str) -> list[str]:
    """A ``voice_settings`` object."""
    if not isinstance(value, dict):
        return [f"{where}.voice_settings is {type(value).__name__}, not an object"]
    problems = [
        f"{where}.voice_settings has unknown field {k!r}" for k in value if k not in (*_VOICE_KEYS, "use_speaker_boost")
    ]
    for name in ("stability", "similarity_boost"):
        if name not in value:
            problems.append(f"{where}.voice_settings lacks the required {name!r}")
    for name, (low, high) in _VOICE_KEYS.items():
        if name in value:
            number = value[name]
            if isinstance(number, bool) or not isinstance(number, int | float) or not low <= number <= high:
                problems.append(f"{where}.voice_settings.{name}={number!r} is not a number from {low} to {high}")
    if "use_speaker_boost" in value and not isinstance(value["use_speaker_boost"], bool):
        problems.append(f"{where}.voice_settings.use_speaker_boost is not a boolean")
    return problems


def check_first_message(message: Any) -> list[str]:
    """The socket's first message: ``{"text": " ", voice_settings?, generation_config?}``."""
    if not isinstance(message, dict):
        return [f"first message is {type(message).__name__}, not a JSON object"]
    problems = [f"first message has unknown field {k!r}" for k in message if k not in _FIRST_KEYS]
    if message.get("text") != " ":
        problems.append(f"first message's text must be a single space, not {message.get('text')!r}")
    if "voice_settings" in message:
        problems += check_voice_settings(message["voice_settings"], "first message")
    if "generation_config" in message:
        config = message["generation_config"]
        if not isinstance(config, dict) or set(config) - {"chunk_length_schedule"}:
            problems.append(f"generation_config {config!r} may only hold chunk_length_schedule")
        else:
            schedule = config.get("chunk_length_schedule")
            if not isinstance(schedule, list) or not schedule:
                problems.append("chunk_length_schedule must be a non-empty list")
            elif any(isinstance(n, bool) or not isinstance(n, int | float) or not 50 <= n <= 500 for n in schedule):
                problems.append(f"chunk_length_schedule {schedule!r} needs numbers from 50 to 500")
    return problems


def check_text_message(message: Any) -> list[str]:
    """A later message: ``{"text": "<words> ", try_trigger_generation?, flush?}`` or ``{"text": ""}``."""
    if not isinstance(message, dict):
        return [f"message is {type(message).__name__}, not a JSON object"]
    problems = [f"text message has unknown or repeated field {k!r}" for k in message if k not in _TEXT_KEYS]
    text = message.get("text")
    if not isinstance(text, str):
        return [*problems, f"text is {type(text).__name__}, not a string"]
    for flag in ("flush", "try_trigger_generation"):
        if flag in message and not isinstance(message[flag], bool):
            problems.append(f"{flag} is {type(message[flag]).__name__}, not a boolean")
    if text == "" and len(message) > 1:
        problems.append("an empty text ends the input: it takes no flags (send ' ' to flush)")
    if text and not text.endswith(" "):
        problems.append(f"text {text[-20:]!r} must end with a single space")
    return problems


def check_http_body(body: Any) -> list[str]:
    """The JSON body of ``POST .../stream``."""
    if not isinstance(body, dict):
        return [f"body is {type(body).__name__}, not a JSON object"]
    problems = [f"body has unknown field {k!r}" for k in body if k not in HTTP_BODY]
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("body.text must be a non-empty string")
    if "model_id" in body and not isinstance(body["model_id"], str):
        problems.append("body.model_id must be a string")
    if "voice_settings" in body:
        problems += check_voice_settings(body["voice_settings"], "body")
    if "apply_text_normalization" in body and body["apply_text_normalization"] not in ("auto", "on", "off"):
        problems.append("body.apply_text_normalization must be auto, on or off")
    if "seed" in body and (isinstance(body["seed"], bool) or not isinstance(body["seed"], int)):
        problems.append("body.seed must be an integer")
    return problems


def detail(status: str, message: str) -> dict[str, Any]:
    """An error body as the API sends it: ``{"detail": {"status": ..., "message": ...}}``."""
    return {"detail": {"status": status, "message": message}}
