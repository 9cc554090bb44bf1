"""What the Live API accepts from a client: ``setup`` and the messages after it.

Written from the Live API reference (ai.google.dev/api/live:
``BidiGenerateContentSetup``, ``BidiGenerateContentClientContent``,
``BidiGenerateContentRealtimeInput``, ``BidiGenerateContentToolResponse``,
``RealtimeInputConfig``, ``SessionResumptionConfig``,
``ContextWindowCompressionConfig``, ``AudioTranscriptionConfig``) and the
Live guides (audio is raw 16-bit little-endian PCM, ``audio/pcm;rate=16000``;
activity signals only with automatic activity detection disabled; a
function response carries the id of the call it answers). Each check
returns why the server would close with 1007 (invalid argument), or None.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from gemini_shapes import check_content, check_system_instruction, check_tools, unknown

SETUP_KEYS = {
    "model",
    "generationConfig",
    "systemInstruction",
    "tools",
    "realtimeInputConfig",
    "sessionResumption",
    "contextWindowCompression",
    "inputAudioTranscription",
    "outputAudioTranscription",
    "proactivity",
    "enableAffectiveDialog",
}
GENERATION_KEYS = {
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "presencePenalty",
    "frequencyPenalty",
    "responseModalities",
    "speechConfig",
    "mediaResolution",
    "thinkingConfig",
}
CLIENT_MESSAGES = {"setup", "clientContent", "realtimeInput", "toolResponse"}
REALTIME_KEYS = {"audio", "video", "text", "activityStart", "activityEnd", "audioStreamEnd", "mediaChunks"}
PCM = re.compile(r"^audio/pcm(;rate=(\d+))?$")


def check_setup(setup: Any, models: tuple[str, ...]) -> tuple[int, str] | None:
    """``(close code, reason)`` for a refused setup, or None."""
    if not isinstance(setup, dict):
        return 1007, "setup must be an object"
    if problem := unknown(setup, SETUP_KEYS, "setup"):
        return 1007, problem
    model = setup.get("model")
    if not isinstance(model, str) or not model.startswith("models/"):
        return 1007, f"setup.model must be 'models/{{model}}', got {model!r}"
    if model.removeprefix("models/") not in models:
        return 1008, f"{model} is not found for API version v1beta, or is not supported for bidiGenerateContent."
    problem = (
        _generation(setup.get("generationConfig", {}))
        or ("systemInstruction" in setup and check_system_instruction(setup["systemInstruction"]))
        or ("tools" in setup and check_tools(setup["tools"], "setup.tools"))
        or _realtime_config(setup.get("realtimeInputConfig", {}))
        or _empty_object(setup, "inputAudioTranscription")
        or _empty_object(setup, "outputAudioTranscription")
        or _compression(setup.get("contextWindowCompression", {}))
        or _resumption(setup.get("sessionResumption", {}))
    )
    return (1007, problem) if problem else None


def _generation(config: Any) -> str | None:
    if not isinstance(config, dict) or (problem := unknown(config, GENERATION_KEYS, "setup.generation_config")):
        return problem or "generationConfig must be an object"
    if config.get("responseModalities", ["AUDIO"]) not in (["AUDIO"], ["TEXT"]):
        return f"responseModalities must be ['AUDIO'] (native audio), got {config.get('responseModalities')!r}"
    speech = config.get("speechConfig", {})
    if not isinstance(speech, dict) or (
        problem := unknown(speech, {"voiceConfig", "languageCode", "multiSpeakerVoiceConfig"}, "speech_config")
    ):
        return problem or "speechConfig must be an object"
    voice = speech.get("voiceConfig", {"prebuiltVoiceConfig": {"voiceName": "Puck"}})
    prebuilt = voice.get("prebuiltVoiceConfig") if isinstance(voice, dict) else None
    if (
        not isinstance(prebuilt, dict)
        or not isinstance(prebuilt.get("voiceName"), str)
        or set(voice) != {"prebuiltVoiceConfig"}
    ):
        return f"speechConfig.voiceConfig must be {{'prebuiltVoiceConfig': {{'voiceName': ...}}}}, got {voice!r}"
    return None


def _realtime_config(config: Any) -> str | None:
    if not isinstance(config, dict) or (
        problem := unknown(
            config, {"automaticActivityDetection", "activityHandling", "turnCoverage"}, "realtime_input_config"
        )
    ):
        return problem or "realtimeInputConfig must be an object"
    detection = config.get("automaticActivityDetection", {})
    allowed = {"disabled", "startOfSpeechSensitivity", "endOfSpeechSensitivity", "prefixPaddingMs", "silenceDurationMs"}
    if not isinstance(detection, dict) or (problem := unknown(detection, allowed, "automatic_activity_detection")):
        return problem or "automaticActivityDetection must be an object"
    if detection.get("startOfSpeechSensitivity", "START_SENSITIVITY_LOW") not in (
        "START_SENSITIVITY_LOW",
        "START_SENSITIVITY_HIGH",
    ):
        return f"bad startOfSpeechSensitivity {detection['startOfSpeechSensitivity']!r}"
    if detection.get("endOfSpeechSensitivity", "END_SENSITIVITY_LOW") not in (
        "END_SENSITIVITY_LOW",
        "END_SENSITIVITY_HIGH",
    ):
        return f"bad endOfSpeechSensitivity {detection['endOfSpeechSensitivity']!r}"
    for key in ("prefixPaddingMs", "silenceDurationMs"):
        if key in detection and not (isinstance(detection[key], int) and detection[key] >= 0):
            return f"{key} must be a non-negative integer"
    if config.get("activityHandling", "START_OF_ACTIVITY_INTERRUPTS") not in (
        "START_OF_ACTIVITY_INTERRUPTS",
        "NO_INTERRUPTION",
    ):
        return f"bad activityHandling {config['activityHandling']!r}"
    return None


def _empty_object(setup: dict[str, Any], key: str) -> str | None:
    value = setup.get(key, {})
    return None if isinstance(value, dict) and not unknown(value, {"languageCodes"}, key) else f"{key} must be {{}}"


def _compression(config: Any) -> str | None:
    if not isinstance(config, dict) or (
        problem := unknown(config, {"slidingWindow", "triggerTokens"}, "context_window_compression")
    ):
        return problem or "contextWindowCompression must be an object"
    window = config.get("slidingWindow", {})
    return (
        None
        if isinstance(window, dict) and not unknown(window, {"targetTokens"}, "sliding_window")
        else "bad slidingWindow"
    )


def _resumption(config: Any) -> str | None:
    if not isinstance(config, dict) or (problem := unknown(config, {"handle", "transparent"}, "session_resumption")):
        return problem or "sessionResumption must be an object"
    if "handle" in config and not (isinstance(config["handle"], str) and config["handle"]):
        return "sessionResumption.handle must be a non-empty string"
    return None


def message_kind(message: Any) -> tuple[str | None, str | None]:
    """``(kind, problem)``: which of the client messages this is, or why it is none."""
    if not isinstance(message, dict) or len(message) != 1:
        return None, f"a client message holds exactly one of {sorted(CLIENT_MESSAGES)}, got {message!r:.80}"
    (kind,) = message
    if kind not in CLIENT_MESSAGES:
        return None, f'Invalid JSON payload received. Unknown name "{kind}": Cannot find field.'
    return kind, None


def check_client_content(content: Any) -> str | None:
    if not isinstance(content, dict) or (problem := unknown(content, {"turns", "turnComplete"}, "client_content")):
        return problem or "clientContent must be an object"
    if "turnComplete" in content and not isinstance(content["turnComplete"], bool):
        return "turnComplete must be a boolean"
    turns = content.get("turns", [])
    if not isinstance(turns, list):
        return "clientContent.turns must be a list"
    return next((p for i, t in enumerate(turns) if (p := check_content(t, f"client_content.turns[{i}]"))), None)


def check_realtime_input(value: Any, *, manual: bool) -> tuple[bytes | None, str | None]:
    """``(pcm, problem)`` of a ``realtimeInput``: its audio decoded, or why it is refused."""
    if not isinstance(value, dict) or (problem := unknown(value, REALTIME_KEYS, "realtime_input")):
        return None, problem or "realtimeInput must be an object"
    if len(value) != 1:
        return None, f"send one input per realtimeInput message, got {sorted(value)}"
    if ("activityStart" in value or "activityEnd" in value) and not manual:
        return None, "activityStart/activityEnd can only be sent when automatic activity detection is disabled"
    if "audio" not in value:
        return None, None
    blob = value["audio"]
    if not isinstance(blob, dict) or set(blob) != {"data", "mimeType"}:
        return (
            None,
            f"realtimeInput.audio must be {{data, mimeType}}, got {sorted(blob) if isinstance(blob, dict) else blob!r}",
        )
    if not PCM.match(str(blob["mimeType"])):
        return None, f"unsupported audio mimeType {blob['mimeType']!r}"
    try:
        pcm = base64.b64decode(blob["data"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        return None, "realtimeInput.audio.data is not base64"
    if not pcm or len(pcm) % 2:
        return None, f"audio must be whole 16-bit samples, got {len(pcm)} bytes"
    return pcm, None


def check_tool_response(value: Any, open_calls: dict[str, str]) -> str | None:
    """Why a ``toolResponse`` is refused: each answer needs the id and name of an open call."""
    if not isinstance(value, dict) or (problem := unknown(value, {"functionResponses"}, "tool_response")):
        return problem or "toolResponse must be an object"
    responses = value.get("functionResponses")
    if not isinstance(responses, list) or not responses:
        return "toolResponse.functionResponses must be a non-empty list"
    for response in responses:
        allowed = {"id", "name", "response", "willContinue", "scheduling"}
        if not isinstance(response, dict) or (problem := unknown(response, allowed, "function_responses")):
            return problem or "a function response must be an object"
        if "id" not in response:
            return "FunctionResponse request must have an `id` field from the response of a ToolCall.FunctionalCalls."
        if response["id"] not in open_calls:
            return f"function response id {response['id']!r} answers no open call"
        if (name := response.get("name")) != open_calls[response["id"]]:
            return f"function response {response['id']!r} names {name!r}, not {open_calls[response['id']]!r}"
        if not isinstance(response.get("response"), dict):
            return "a function response's response must be an object"
    return None
