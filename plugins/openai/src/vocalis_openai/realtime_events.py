"""Realtime API server events as :class:`~vocalis.providers.realtime.RealtimeEvent` objects.

Both the GA event names (``response.output_audio.delta``) and the older beta
ones (``response.audio.delta``) are understood. Besides translating, the
mapper keeps what the client side needs to know: the response in progress,
the assistant audio item to truncate on a barge-in, the server's errors.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.audio import AudioFrame
from vocalis.providers.base import ProviderError
from vocalis.providers.llm import ToolCallRequest
from vocalis.providers.realtime import RealtimeEvent, RealtimeEventType
from vocalis.providers.redact import redact
from vocalis_openai.client import secrets_of

if TYPE_CHECKING:
    from vocalis.providers.realtime import RealtimeModel

E = RealtimeEventType
BYTES_PER_MS = 48  # 24 kHz, 16-bit mono
# Error codes after which the same request can never succeed.
_FATAL_CODES = frozenset({"invalid_api_key", "insufficient_quota", "model_not_found", "session_expired"})
_FATAL_TYPES = frozenset({"invalid_request_error", "authentication_error", "permission_error"})
_AUDIO_DELTAS = ("response.output_audio.delta", "response.audio.delta")
_TEXT_DELTAS = (
    "response.output_audio_transcript.delta",
    "response.audio_transcript.delta",
    "response.output_text.delta",
    "response.text.delta",
)


def field(obj: Any, name: str, default: Any = None) -> Any:
    """A field of a typed SDK event, or of a dict the SDK left untyped."""
    if isinstance(obj, dict):
        value = obj.get(name)
    else:
        value = getattr(obj, name, None)
    return default if value is None else value


@dataclass(slots=True)
class AudioItem:
    """An assistant audio item as received so far (what a truncation may cut)."""

    item_id: str
    content_index: int
    received_bytes: int = 0

    @property
    def received_ms(self) -> int:
        """Milliseconds of its audio received."""
        return self.received_bytes // BYTES_PER_MS


class ServerEventMapper:
    """Translates server events and emits the resulting :class:`RealtimeEvent` objects.

    Args:
        model: The provider (labels errors, gives the sample rate).
        emit: Where the events go (the session's stream).

    Attributes:
        ready: Resolved by ``session.created``; failed by an ``error`` before it.
        errors: The server's ``error`` events, as labelled errors.
        last_error: ``(text, recoverable)`` of the latest server error.
        active_response: Id of the response in progress, if any.
        pending_creates: ``event_id`` of each ``response.create`` not yet answered.
        uncommitted: Whether audio was appended since the buffer was last committed.
    """

    def __init__(self, model: RealtimeModel, emit: Callable[[RealtimeEvent], None]) -> None:
        self._model = model
        self._emit = emit
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.errors: list[ProviderError] = []
        self.last_error: tuple[str, bool] | None = None
        self.active_response: str | None = None
        self.pending_creates: list[str] = []
        self.uncommitted = False
        self._audio_item: AudioItem | None = None
        self._truncated: set[str] = set()
        self._calls_seen: set[str] = set()
        self._carry = b""
        self._handlers: dict[str, Callable[[Any], None]] = {
            "session.created": self._on_session_created,
            "error": self._on_error,
            "input_audio_buffer.speech_started": lambda e: self._emit(RealtimeEvent(E.SPEECH_STARTED)),
            "input_audio_buffer.speech_stopped": lambda e: self._emit(RealtimeEvent(E.SPEECH_STOPPED)),
            "input_audio_buffer.committed": self._on_committed,
            "conversation.item.input_audio_transcription.delta": self._on_transcript_delta,
            "conversation.item.input_audio_transcription.completed": self._on_transcript_done,
            "conversation.item.input_audio_transcription.failed": self._on_transcript_failed,
            "response.created": self._on_response_created,
            "response.function_call_arguments.done": self._on_arguments_done,
            "response.output_item.done": lambda e: self._on_item(field(e, "item"), field(e, "response_id", "")),
            "response.done": self._on_response_done,
            **dict.fromkeys(_AUDIO_DELTAS, self._on_audio),
            **dict.fromkeys(_TEXT_DELTAS, self._on_text),
        }

    @property
    def label(self) -> str:
        """The provider's label."""
        return self._model.label

    def redact(self, text: str) -> str:
        """``text`` from the server without the provider's credentials (see
        :func:`~vocalis.providers.redact.redact`), for logs and events."""
        return redact(text, secrets_of(self._model))

    def handle(self, event: Any) -> None:
        """Translate one parsed server event; unknown types are ignored."""
        kind = str(field(event, "type", ""))
        handler = self._handlers.get(kind)
        if handler is None:
            return
        try:
            handler(event)
        except (TypeError, ValueError, AttributeError) as exc:
            # One odd event must not end the conversation.
            logger.warning("{}: ignoring a malformed {} event: {}", self.label, kind, self.redact(str(exc)))

    def take_audio_item(self) -> AudioItem | None:
        """The latest assistant audio item, handed out once for truncation."""
        item, self._audio_item = self._audio_item, None
        if item is not None:
            self._truncated.add(item.item_id)
        return item

    # -- session and input ---------------------------------------------------------
    def _on_session_created(self, event: Any) -> None:
        if not self.ready.done():
            self.ready.set_result(None)

    def _on_error(self, event: Any) -> None:
        error = field(event, "error", {})
        kind, code = str(field(error, "type", "error")), field(error, "code")
        text = self.redact(f"{kind}{f' ({code})' if code else ''}: {field(error, 'message', 'no message')}")
        recoverable = code not in _FATAL_CODES and kind not in _FATAL_TYPES
        failure = self._model.error(f"server error: {text}", recoverable=recoverable)
        self.errors.append(failure)
        self.last_error = (text, code not in _FATAL_CODES)
        if not self.ready.done():
            self.ready.set_exception(failure)
            return
        self._emit(RealtimeEvent(E.ERROR, text=text, error=failure))
        source = field(error, "event_id")
        if source in self.pending_creates:
            self.pending_creates.remove(source)
            if self.active_response is None:
                # The request for an answer failed: end an empty answer so a
                # caller waiting for one does not wait for its timeout.
                self._emit(RealtimeEvent(E.RESPONSE_STARTED))
                self._emit(RealtimeEvent(E.RESPONSE_DONE, interrupted=True))

    def _on_committed(self, event: Any) -> None:
        self.uncommitted = False

    def _on_transcript_delta(self, event: Any) -> None:
        if delta := field(event, "delta", ""):
            self._emit(RealtimeEvent(E.INPUT_TRANSCRIPT, text=delta, is_final=False))

    def _on_transcript_done(self, event: Any) -> None:
        self._emit(RealtimeEvent(E.INPUT_TRANSCRIPT, text=field(event, "transcript", "")))

    def _on_transcript_failed(self, event: Any) -> None:
        message = field(field(event, "error", {}), "message", "unknown error")
        logger.warning("{}: input transcription failed: {}", self.label, self.redact(str(message)))

    # -- responses -------------------------------------------------------------------
    def _on_response_created(self, event: Any) -> None:
        response_id = str(field(field(event, "response", {}), "id", ""))
        self.active_response = response_id
        if self.pending_creates:
            self.pending_creates.pop(0)
        self._carry = b""
        self._emit(RealtimeEvent(E.RESPONSE_STARTED, response_id=response_id))

    def _on_audio(self, event: Any) -> None:
        try:
            data = base64.b64decode(field(event, "delta", ""), validate=True)
        except (binascii.Error, ValueError):
            logger.warning("{}: ignoring an audio delta that is not base64", self.label)
            return
        item_id = str(field(event, "item_id", ""))
        if item_id not in self._truncated:
            item = self._audio_item
            if item is None or item.item_id != item_id:
                content_index = int(field(event, "content_index", 0))
                item = self._audio_item = AudioItem(item_id, content_index)
            item.received_bytes += len(data)
        # A delta may split a sample; keep the odd byte for the next one.
        data = self._carry + data
        cut = len(data) - len(data) % 2
        data, self._carry = data[:cut], data[cut:]
        if data:
            frame = AudioFrame(data, self._model.sample_rate)
            response_id = field(event, "response_id", "")
            self._emit(RealtimeEvent(E.AUDIO, frame=frame, response_id=response_id))

    def _on_text(self, event: Any) -> None:
        if delta := field(event, "delta", ""):
            response_id = field(event, "response_id", "")
            self._emit(RealtimeEvent(E.OUTPUT_TRANSCRIPT, text=delta, response_id=response_id))

    def _on_arguments_done(self, event: Any) -> None:
        self._on_call(
            field(event, "call_id"),
            field(event, "item_id"),
            field(event, "name", ""),
            field(event, "arguments", ""),
            field(event, "response_id", ""),
        )

    def _on_item(self, item: Any, response_id: str) -> None:
        if field(item, "type") == "function_call":
            self._on_call(
                field(item, "call_id"),
                field(item, "id"),
                field(item, "name", ""),
                field(item, "arguments", ""),
                response_id,
            )

    def _on_call(self, call_id: str | None, item_id: str | None, name: str, arguments: str, response_id: str) -> None:
        # The same call is announced by arguments.done, output_item.done and response.done.
        key = call_id or item_id or ""
        if not name or (key and key in self._calls_seen):
            return
        self._calls_seen.add(key)
        call = ToolCallRequest(call_id or f"call_{uuid.uuid4().hex[:12]}", name, arguments or "{}")
        self._emit(RealtimeEvent(E.FUNCTION_CALL, tool_calls=[call], response_id=response_id))

    def _on_response_done(self, event: Any) -> None:
        response = field(event, "response", {})
        response_id = str(field(response, "id", ""))
        for item in field(response, "output", None) or []:
            self._on_item(item, response_id)
        status = field(response, "status", "completed")
        if status == "failed":
            error = field(field(response, "status_details", {}), "error", {})
            message = field(error, "message", "no details")
            logger.warning("{}: response failed: {}", self.label, self.redact(str(message)))
        if self.active_response == response_id or not response_id:
            self.active_response = None
        interrupted = status in ("cancelled", "incomplete", "failed")
        self._emit(RealtimeEvent(E.RESPONSE_DONE, response_id=response_id, interrupted=interrupted))
