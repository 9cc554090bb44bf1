"""Reading a Twilio Media Stream's ``start`` message, with bounds on every field.

Everything in ``start`` comes from whoever opened the socket (the route is
public), and the ``streamSid`` is echoed in every outgoing ``media`` message
(fifty a second): a huge one would be multiplied fifty times a second. So
the ids are checked (``max_sid_chars``, 64 by default, of
``[A-Za-z0-9_.:-]``; Twilio's are 34 characters), a bad ``streamSid``
refuses the call and a bad ``callSid`` is dropped; custom parameters keep
at most ``max_parameters`` string entries with keys and values of at most
``max_parameter_chars`` characters each, the rest are dropped (logged
once). The ``token`` and ``session`` parameters are taken out: the token
is checked by the handler, the session id names a session to resume.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis_websocket.base import (
    CLOSE_POLICY_VIOLATION,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_UNSUPPORTED_DATA,
    valid_session_id,
)

if TYPE_CHECKING:
    from aiohttp import web

MULAW = "audio/x-mulaw"
_SID = re.compile(r"[A-Za-z0-9_.:-]+")
_PLUMBING = ("token", "session")  # parameters for the server, not for the application


@dataclass(frozen=True)
class Refusal:
    """The call is refused with this close code and reason."""

    code: int
    reason: str


@dataclass
class StartInfo:
    """What a valid ``start`` says about the stream."""

    stream_sid: str
    call_sid: str = ""
    sample_rate: int = 8000
    custom_parameters: dict[str, str] = field(default_factory=dict)
    resume_id: str | None = None


def parse(text: str) -> dict[str, Any] | None:
    """A JSON object, or None for anything else (bad JSON, another type, too deep)."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested too deeply
        return None
    return message if isinstance(message, dict) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def start_token(message: dict[str, Any]) -> str | None:
    """The ``token`` custom parameter, if it is a string."""
    token = _dict(_dict(message.get("start")).get("customParameters")).get("token")
    return token if isinstance(token, str) else None


def valid_sid(value: object, limit: int) -> bool:
    """Whether ``value`` looks like a Twilio id: 1..``limit`` of ``[A-Za-z0-9_.:-]``."""
    return isinstance(value, str) and 0 < len(value) <= limit and _SID.fullmatch(value) is not None


def _valid_rate(rate: Any) -> bool:
    return isinstance(rate, int) and not isinstance(rate, bool) and 8000 <= rate <= 48000


def read_start(message: dict[str, Any], settings: Any, label: str) -> StartInfo | Refusal:
    """Check a ``start`` message (after the token) and take what the call needs."""
    body = _dict(message.get("start"))
    stream_sid = message.get("streamSid") or body.get("streamSid")
    if not isinstance(stream_sid, str) or not stream_sid:
        return Refusal(CLOSE_PROTOCOL_ERROR, "start has no streamSid")
    max_sid: int = settings.max_sid_chars
    if not valid_sid(stream_sid, max_sid):
        return Refusal(CLOSE_POLICY_VIOLATION, f"invalid streamSid (at most {max_sid} of A-Z a-z 0-9 _ . : -)")
    fmt = _dict(body.get("mediaFormat"))
    rate = fmt.get("sampleRate", 8000)
    if fmt.get("encoding", MULAW) != MULAW or fmt.get("channels", 1) != 1 or not _valid_rate(rate):
        return Refusal(CLOSE_UNSUPPORTED_DATA, f"unsupported media format {json.dumps(fmt)[:80]}")
    raw = _dict(body.get("customParameters"))
    resume_id = raw.get("session")
    if "session" in raw and not valid_session_id(resume_id):
        return Refusal(CLOSE_POLICY_VIOLATION, "invalid session id")
    call_sid = body.get("callSid", "")
    if call_sid != "" and not valid_sid(call_sid, max_sid):
        logger.warning("{}: dropped an invalid callSid (at most {} of A-Z a-z 0-9 _ . : -)", label, max_sid)
        call_sid = ""
    params, dropped = keep_parameters(raw, settings.max_parameters, settings.max_parameter_chars)
    if dropped:
        logger.warning(
            "{}: dropped {} custom parameter(s): more than {}, not strings, or longer than {} characters",
            label,
            dropped,
            settings.max_parameters,
            settings.max_parameter_chars,
        )
    return StartInfo(stream_sid, call_sid, int(rate), params, resume_id)


def keep_parameters(raw: dict[str, Any], max_count: int, max_chars: int) -> tuple[dict[str, str], int]:
    """The custom parameters an application gets, and how many were dropped."""
    kept: dict[str, str] = {}
    dropped = 0
    for key, value in raw.items():
        if key in _PLUMBING:
            continue
        if len(kept) >= max_count or not isinstance(value, str) or len(key) > max_chars or len(value) > max_chars:
            dropped += 1
            continue
        kept[key] = value
    return kept, dropped


async def wait_for_start(ws: web.WebSocketResponse, timeout: float, max_messages: int) -> dict[str, Any] | str:
    """The ``start`` message, or why there is none (empty when the socket closed).

    Nothing is logged here: the caller refuses the call, and logs that
    through the endpoint's rate-limited log.
    """
    from aiohttp import WSMsgType

    others = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                msg = await ws.receive()
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    return ""
                if msg.type is WSMsgType.TEXT:
                    message = parse(msg.data)
                    if message is not None and message.get("event") == "start":
                        return message
                # "connected" (and anything sent too early) needs no answer; a flood ends here.
                others += 1
                if others > max_messages:
                    return f"expected a start message, got {others} others"
    except TimeoutError:
        return f"expected a start message within {timeout:g} s"
