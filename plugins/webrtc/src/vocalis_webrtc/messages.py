"""Session events as the JSON messages the page receives on its data channel.

Every message is an object ``{"type": <event>, ...payload}``. Payload values
are made JSON-safe here (dataclasses such as ``TurnMetrics`` become dicts,
enums their values, anything else its ``str``), so a plugin adding odd
payloads cannot break the channel. ``metrics_collected`` also carries the
turn's end-to-end latency at the top level, which is all the page shows.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 8


def jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON types (dicts, lists, strings, numbers, None)."""
    if depth > MAX_DEPTH:
        return str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return jsonable(value.value, depth + 1)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict(), depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value), depth + 1)
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, depth + 1) for v in value]
    return str(value)


def event_message(event: str, payload: Mapping[str, object]) -> dict[str, Any]:
    """The message for one session event.

    Args:
        event: The session event's name (``on_speech_in``, ``agent_turn``...).
        payload: Its payload, as the session emitted it.
    """
    message: dict[str, Any] = {"type": event}
    body = jsonable(dict(payload))
    if isinstance(body, dict):
        body.pop("type", None)  # the event name wins over a payload field
        message.update(body)
    if event == "metrics_collected":
        metrics = message.get("metrics")
        if isinstance(metrics, dict):
            message["turn"] = metrics.get("turn")
            message["e2e_latency"] = metrics.get("e2e_latency")
    return message


def encode(message: dict[str, Any]) -> str:
    """One message as compact JSON text."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def close_message(reason: str) -> dict[str, Any]:
    """What the server sends before it ends a session (``idle``, ``shutdown``...)."""
    return {"type": "close", "reason": reason}


def parse_client_message(text: str | bytes) -> dict[str, Any] | None:
    """A message from the page, or None when it is not a JSON object with a type."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        return None
    return data
