"""Live API server content as :class:`~vocalis.providers.realtime.RealtimeEvent` objects.

Gemini has no response objects: the model's turn is a run of
``serverContent`` messages (``modelTurn`` parts with 24 kHz PCM as
``inlineData``, ``outputTranscription`` text), closed by
``generationComplete`` (all of it is sent) and ``turnComplete`` (the server
thinks it has been played), or cut by ``interrupted`` (the user spoke, or a
client message came) and then ``turnComplete``. A ``toolCall`` ends what
was said before it; after the ``toolResponse`` the model goes on in a new
run. :class:`TurnTracker` turns that into RESPONSE_STARTED ... RESPONSE_DONE,
with the user's barge-in (an ``interrupted`` no message of ours caused) as
SPEECH_STARTED, and drops what comes for a turn that was already ended (cut
short by a cancel).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from collections.abc import Callable
from enum import Enum
from typing import Any

from loguru import logger

from vocalis.audio import AudioFrame
from vocalis.chat.formats import JSONObject
from vocalis.providers.llm import ToolCallRequest
from vocalis.providers.realtime import RealtimeEvent, RealtimeEventType

E = RealtimeEventType
OUTPUT_RATE = 24_000
_RATE = re.compile(r"rate=(\d+)")
# Raw 16-bit PCM as the Live API labels it (``audio/pcm;rate=24000``), and as
# Gemini's speech generation does (``audio/L16;codec=pcm;rate=24000``).
_PCM = re.compile(r"audio/(pcm|l16)\b", re.IGNORECASE)


class _State(Enum):
    IDLE = "idle"  # no model turn in progress
    ACTIVE = "active"  # a response is being reported
    DRAINING = "draining"  # the response was ended; the turn's remains are dropped


class TurnTracker:
    """Follows the model's turns and emits the events they mean.

    Args:
        emit: Where events go (the session's stream).
        label: The provider's label, for logs.
        text_parts: Report the model's text parts as its transcript (when
            output transcription is off, they are all there is).
    """

    def __init__(self, emit: Callable[[RealtimeEvent], None], label: str, *, text_parts: bool) -> None:
        self._emit = emit
        self._label = label
        self._text_parts = text_parts
        self._state = _State.IDLE
        self._ids = itertools.count(1)
        self.response_id = ""
        self.user_speaking = False
        self._input: list[str] = []
        self._output: list[str] = []
        self._received = 0.0  # seconds of the response's audio received
        self._carry = b""
        self._generating = False  # the server may still send for the active response
        self._expecting = False  # an answer was asked for and has not started
        self._own_interrupt = False  # a message of ours may stop the model's turn: its ``interrupted`` is no speech
        self.dropped = 0  # server messages dropped for an ended turn

    @property
    def idle(self) -> bool:
        """Whether nothing is under way: no model turn, no answer asked for, no
        user words waiting for one (a safe moment to switch connections)."""
        return self._state is _State.IDLE and not self._expecting and not self._input and not self.user_speaking

    def expect(self) -> None:
        """An answer was asked for: the turn is under way before its first message."""
        self._expecting = True

    # -- server messages -----------------------------------------------------------
    def on_server_content(self, content: JSONObject) -> None:
        """Handle one ``serverContent`` object."""
        transcription = content.get("inputTranscription")
        if isinstance(transcription, dict) and isinstance(transcription.get("text"), str) and transcription["text"]:
            self._input.append(transcription["text"])
            self._emit(RealtimeEvent(E.INPUT_TRANSCRIPT, text=transcription["text"], is_final=False))
            if transcription.get("finished"):
                self._final_input()
        blobs, texts = self._content(content)
        if blobs or texts:
            if self._state is _State.DRAINING:
                self.dropped += 1
            else:
                if self._state is _State.IDLE:
                    self._start()  # before decoding: a new response starts its audio afresh
                for blob in blobs:
                    if (frame := self._audio(blob)) is not None:
                        self._emit(RealtimeEvent(E.AUDIO, frame=frame, response_id=self.response_id))
                for text in texts:
                    self._output.append(text)
                    self._emit(RealtimeEvent(E.OUTPUT_TRANSCRIPT, text=text, response_id=self.response_id))
        if content.get("interrupted"):
            self._interrupted()
        if content.get("generationComplete") and self._state is _State.ACTIVE:
            self._generating = False
            self._finish(interrupted=False, then=_State.DRAINING)
        if content.get("turnComplete"):
            if self._state is _State.ACTIVE:
                self._finish(interrupted=False, then=_State.IDLE)
            self._state = _State.IDLE
            self._expecting = self._own_interrupt = False  # the turn ours might have stopped is over
            self._final_input()  # a transcript that came after the answer

    def on_voice_activity(self, activity: JSONObject) -> None:
        """Handle a ``voiceActivity`` signal (the server's VAD, where it sends one)."""
        kind = str(activity.get("voiceActivityType", ""))
        if kind == "ACTIVITY_START" and not self.user_speaking:
            self.user_speaking = True
            self._emit(RealtimeEvent(E.SPEECH_STARTED))
        elif kind == "ACTIVITY_END" and self.user_speaking:
            self.user_speaking = False
            self._emit(RealtimeEvent(E.SPEECH_STOPPED))

    def on_tool_call(self, calls: list[ToolCallRequest]) -> None:
        """Handle a ``toolCall``: the calls end the response that made them."""
        if self._state is not _State.ACTIVE:
            self._start()  # a call opens a turn, even after one that was cut
        self._emit(RealtimeEvent(E.FUNCTION_CALL, tool_calls=calls, response_id=self.response_id))
        self._generating = False
        # The turn goes on after the tool's response: as a new response.
        self._finish(interrupted=False, then=_State.IDLE)

    # -- the client's side ----------------------------------------------------------
    def interrupting(self) -> None:
        """A client message that stops the model's turn (the server's
        ``interrupted`` answers it) is on its way: a ``clientContent``, or
        the ``activityStart`` of a cancel with manual activity detection.

        The ``interrupted`` then ends the response without SPEECH_STARTED:
        the user did not speak. It is only expected while a turn is under
        way; after its ``turnComplete`` the next ``interrupted`` is the
        user's again.
        """
        if self._state is not _State.IDLE or self._expecting:
            self._own_interrupt = True

    def cancel(self) -> bool:
        """End the active response for a barge-in the client saw.

        Returns:
            Whether the server may still be generating it.
        """
        if self._state is not _State.ACTIVE:
            return False
        generating = self._generating
        self._finish(interrupted=True, then=_State.DRAINING)
        return generating

    def abort(self) -> None:
        """The connection was lost: end the active response, forget the turn."""
        if self._state is _State.ACTIVE:
            self._finish(interrupted=True, then=_State.IDLE)
        self._state = _State.IDLE
        self._expecting = self._own_interrupt = False

    def heard(self, played_seconds: float) -> tuple[str, bool]:
        """``(words heard, whether that is all of them)`` of the latest response.

        The words are taken in proportion to the audio played (the
        transcript has no timings).
        """
        words = "".join(self._output).split()
        if self._received <= 0 or not words:
            return "", not words
        share = min(1.0, max(0.0, played_seconds) / self._received)
        kept = int(len(words) * share + 1e-9)
        return " ".join(words[:kept]), kept >= len(words)

    # -- inside --------------------------------------------------------------------------
    def _content(self, content: JSONObject) -> tuple[list[dict[str, Any]], list[str]]:
        """``(audio blobs, texts)`` the message holds for the model's turn."""
        blobs: list[dict[str, Any]] = []
        texts: list[str] = []
        turn = content.get("modelTurn")
        parts = turn.get("parts") if isinstance(turn, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, dict) or part.get("thought"):
                continue  # thoughts are never spoken
            blob = part.get("inlineData")
            if isinstance(blob, dict) and _PCM.match(str(blob.get("mimeType") or "audio/pcm")):
                if blob.get("data"):
                    blobs.append(blob)
            elif isinstance(blob, dict):
                logger.debug("{}: ignoring inline data of type {}", self._label, blob.get("mimeType"))
            elif self._text_parts and isinstance(part.get("text"), str) and part["text"]:
                texts.append(part["text"])
        spoken = content.get("outputTranscription")
        if isinstance(spoken, dict) and isinstance(spoken.get("text"), str) and spoken["text"]:
            texts.append(spoken["text"])
        return blobs, texts

    def _audio(self, blob: dict[str, Any]) -> AudioFrame | None:
        text = str(blob.get("data") or "")
        try:
            # Protobuf's JSON is standard base64; its parsers also accept the URL-safe kind.
            data = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            logger.warning("{}: ignoring audio that is not base64", self._label)
            return None
        match = _RATE.search(str(blob.get("mimeType") or ""))
        rate = int(match.group(1)) if match and 8_000 <= int(match.group(1)) <= 96_000 else OUTPUT_RATE
        # A chunk may split a sample; keep the odd byte for the next one.
        data = self._carry + data
        cut = len(data) - len(data) % 2
        data, self._carry = data[:cut], data[cut:]
        if not data:
            return None
        self._received += len(data) / 2 / rate
        return AudioFrame(data, rate)

    def _start(self) -> None:
        if self.user_speaking:
            self.user_speaking = False
            self._emit(RealtimeEvent(E.SPEECH_STOPPED))
        self._state = _State.ACTIVE
        self._expecting = False
        self.response_id = f"resp_{next(self._ids)}"
        self._output, self._received, self._carry = [], 0.0, b""
        self._generating = True
        self._emit(RealtimeEvent(E.RESPONSE_STARTED, response_id=self.response_id))

    def _finish(self, *, interrupted: bool, then: _State) -> None:
        self._final_input()
        self._state = then
        self._emit(RealtimeEvent(E.RESPONSE_DONE, response_id=self.response_id, interrupted=interrupted))

    def _interrupted(self) -> None:
        active = self._state is _State.ACTIVE
        own, self._own_interrupt = self._own_interrupt, False
        if active:
            self._final_input()  # what the user said before: the cut answer's question
        if not own and not self.user_speaking:
            # The server's VAD heard the user over the model: a barge-in.
            self.user_speaking = True
            self._emit(RealtimeEvent(E.SPEECH_STARTED))
        if active:
            self._generating = False
            self._finish(interrupted=True, then=_State.DRAINING)
        # Otherwise the server stopped a turn not reported yet, or one whose
        # audio is still playing here: the pipeline stops that on SPEECH_STARTED
        # (or, when our message stopped it, already knows).

    def _final_input(self) -> None:
        text = "".join(self._input).strip()
        self._input = []
        if text:
            self._emit(RealtimeEvent(E.INPUT_TRANSCRIPT, text=text, is_final=True))
