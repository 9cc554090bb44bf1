"""Deepgram's live messages as :class:`SpeechEvent`s: one final per utterance.

Deepgram finalises audio in pieces: a ``Results`` message with ``is_final``
fixes the words of one stretch of audio, and long speech gets several.
``speech_final`` (its endpointing heard a pause), ``UtteranceEnd`` (a gap
after the last word) and ``from_finalize`` (the answer to a ``Finalize``)
mark where an utterance ends. The pipeline expects one final transcript per
stretch of speech, so the pieces are held and joined into one
``FINAL_TRANSCRIPT`` at such a mark; meanwhile interim events show the
pieces so far plus the newest interim words.

``SpeechStarted`` (``vad_events``) and the marks above also become
``START_OF_SPEECH``/``END_OF_SPEECH``, which a pipeline without a VAD uses.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vocalis.providers.stt import SpeechEvent, SpeechEventType

# An empty final this long after SpeechStarted, with no word heard since,
# means the "speech" was noise: the speech is over.
_FALSE_START_SECONDS = 1.0


@dataclass(slots=True)
class PendingFlush:
    """A ``Finalize`` sent and not answered yet.

    Attributes:
        at: Stream seconds of audio sent before it (to resend it in place
            after a reconnect).
        deadline: Loop time past which it is answered with what is final so far.
    """

    at: float
    deadline: float


@dataclass(slots=True)
class _Piece:
    text: str
    confidence: float
    start: float
    end: float


class TranscriptAssembler:
    """Turns the messages of one stream (over any number of connections) into events.

    Args:
        send: Delivers an event to the stream's reader.
        language: The language asked for (reported on every event), or None.
        hold_finals: Join ``is_final`` pieces until an utterance ends. Off
            when neither endpointing nor utterance ends are asked for (no
            mark would come but a ``Finalize``): each piece is then a final.

    Attributes:
        offset: Stream seconds at which the current connection's clock
            started (its timestamps start at 0).
        flushes: ``Finalize`` messages not answered yet, oldest first.
    """

    def __init__(self, send: Callable[[SpeechEvent], None], language: str | None, *, hold_finals: bool = True) -> None:
        self._send = send
        self._language = language
        self._hold = hold_finals
        self.offset = 0.0
        self.flushes: deque[PendingFlush] = deque()
        self._pieces: list[_Piece] = []
        self._interim = ""
        self._shown = ""
        self._in_speech = False
        self._speech_at = 0.0
        self._heard = False

    # -- messages -------------------------------------------------------------------
    def handle(self, message: Mapping[str, Any]) -> float | None:
        """Take one server message.

        Returns:
            For an ``is_final`` result, the stream seconds up to which the
            audio is transcribed for good (audio before it needs no resend).
        """
        kind = message.get("type")
        if kind == "Results":
            return self._results(message)
        if kind == "SpeechStarted":
            self._start(self.offset + _number(message.get("timestamp")))
        elif kind == "UtteranceEnd":
            self._final()
            self._end()
        return None

    def _results(self, message: Mapping[str, Any]) -> float | None:
        alternative = _first_alternative(message)
        text = str(alternative.get("transcript") or "").strip()
        confidence = min(1.0, max(0.0, _number(alternative.get("confidence"), 1.0)))
        start = self.offset + _number(message.get("start"))
        end = start + _number(message.get("duration"))
        languages = alternative.get("languages")
        if isinstance(languages, list) and languages and isinstance(languages[0], str):
            self._language = languages[0]
        if text:
            if not self._in_speech:
                self._start(start)
            self._heard = True
        if not message.get("is_final"):
            self._interim = text
            self._show(confidence)
            return None
        self._interim = ""
        if text:
            self._pieces.append(_Piece(text, confidence, start, end))
        answered = False
        if message.get("from_finalize") and self.flushes:
            self.flushes.popleft()
            answered = True
        if message.get("speech_final") or message.get("from_finalize") or not self._hold:
            self._final(force=answered)
            if message.get("speech_final"):
                self._end()
        elif not text and not self._pieces and self._in_speech and not self._heard:
            if end >= self._speech_at + _FALSE_START_SECONDS:
                self._end()
        else:
            self._show(confidence)
        return end

    # -- the stream's own marks ---------------------------------------------------------
    def answer_overdue(self, now: float) -> None:
        """Answer the ``Finalize`` messages past their deadline with what is final so far.

        Deepgram answers a ``Finalize`` only when it still holds audio; the
        segment that asked must get its final all the same.
        """
        while self.flushes and self.flushes[0].deadline <= now:
            self.flushes.popleft()
            self._final(force=True)

    def connection_lost(self) -> None:
        """The connection dropped: its interim words will be heard again on the next one."""
        self._interim = ""

    def finish(self) -> None:
        """The stream ends: what was heard is final, the speech is over."""
        if self._interim:
            # Never finalised (the connection ended first): the best there is.
            self._pieces.append(_Piece(self._interim, 0.5, self.offset, self.offset))
            self._interim = ""
        self._final()
        self._end()

    # -- events --------------------------------------------------------------------------
    def _start(self, at: float) -> None:
        if self._in_speech:
            return
        self._in_speech, self._heard, self._speech_at = True, False, at
        self._send(SpeechEvent(SpeechEventType.START_OF_SPEECH, language=self._language, start_time=at))

    def _end(self) -> None:
        if not self._in_speech:
            return
        self._in_speech = False
        self._send(SpeechEvent(SpeechEventType.END_OF_SPEECH, language=self._language))

    def _show(self, confidence: float) -> None:
        words = [piece.text for piece in self._pieces]
        if self._interim:
            words.append(self._interim)
        text = " ".join(words)
        if not text or text == self._shown:
            return
        self._shown = text
        start = self._pieces[0].start if self._pieces else self.offset
        self._send(
            SpeechEvent(
                SpeechEventType.INTERIM_TRANSCRIPT,
                text,
                confidence=confidence,
                language=self._language,
                start_time=start,
            )
        )

    def _final(self, *, force: bool = False) -> None:
        """Send the pieces as one final; an empty one only when ``force`` (a flush's answer)."""
        pieces, self._pieces = self._pieces, []
        self._shown = ""
        if not pieces and not force:
            return
        text = " ".join(piece.text for piece in pieces)
        confidence = sum(p.confidence for p in pieces) / len(pieces) if pieces else 1.0
        self._send(
            SpeechEvent(
                SpeechEventType.FINAL_TRANSCRIPT,
                text,
                confidence=confidence,
                language=self._language,
                start_time=pieces[0].start if pieces else 0.0,
                end_time=pieces[-1].end if pieces else 0.0,
            )
        )


def _first_alternative(message: Mapping[str, Any]) -> Mapping[str, Any]:
    channel = message.get("channel")
    alternatives = channel.get("alternatives") if isinstance(channel, dict) else None
    if isinstance(alternatives, list) and alternatives and isinstance(alternatives[0], dict):
        return alternatives[0]
    return {}


def _number(value: object, default: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)
