"""Audio of a turn's contexts, cut into frames and tagged with its sentences.

Each sentence of a turn is sent to Cartesia followed by a manual flush, so
its audio comes back with its own ``flush_id`` (1 for the first sentence of
a context, 2 for the next...) and ends with a ``flush_done`` message. That
maps every chunk to the sentence it speaks: the first frame of a sentence
carries its text and the last is marked ``segment_end``, as the session's
account of what was heard needs. Chunks without a ``flush_id`` (a server
that does not echo it) belong to the oldest sentence whose audio is not
complete yet.

Word timestamps are times on the context's audio. Each word goes to its
sentence (by ``flush_id``, else by where its time falls), is moved onto
the sentence's own timeline (seconds from its first audio) and rides on
the sentence's next frame out (:attr:`SynthesizedAudio.words`), or on its
last frame while that is still held back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vocalis.audio import AudioFrame
from vocalis.providers.tts import SynthesizedAudio, WordTiming

_EPSILON = 1e-6  # seconds: float sums of frame lengths
# Cartesia's markup, which a word's timestamp may quote: no word of its own.
_TAGS = re.compile(r"</?(?:spell|emotion|break|volume|speed)\b[^>]*>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class WordTimestamp:
    """When a word is spoken, on the stream's audio timeline.

    Attributes:
        word: The word, as the server wrote it.
        start: Seconds from the start of the stream's audio.
        end: Seconds from the start of the stream's audio.
        segment: Index of the sentence (0-based) the word belongs to.
    """

    word: str
    start: float
    end: float
    segment: int


@dataclass(slots=True)
class _Segment:
    index: int
    text: str
    context_id: str
    flush_id: int
    pending: bytearray = field(default_factory=bytearray)
    tagged: bool = False  # its first frame (with the text) went out
    ended: bool = False
    start: float | None = None  # seconds of its context's audio before its own
    stamps: list[tuple[str, float, float]] = field(default_factory=list)  # on the context's timeline, not sent yet
    own_timeline: bool | None = None  # the server timed its words from its own start (decided on the first)


class SegmentAssembler:
    """Turns a stream's chunks into tagged frames, in order.

    One frame is held back until the next one (or the end of its sentence)
    comes, so that the last frame of a sentence can be marked ``segment_end``.

    Args:
        sample_rate: Rate of the 16-bit mono PCM received.
        frame_ms: Length of the frames produced (the last of a sentence may be shorter).
    """

    def __init__(self, sample_rate: int, frame_ms: int) -> None:
        self.sample_rate = sample_rate
        self._frame_bytes = 2 * (sample_rate * frame_ms // 1000)
        self._segments: list[_Segment] = []
        self._current: _Segment | None = None
        self._held: SynthesizedAudio | None = None
        self._held_segment: _Segment | None = None
        self._context_start: dict[str, float] = {}
        self._context_bytes: dict[str, int] = {}
        self._first_flush_id: dict[str, int] = {}
        self.seconds = 0.0
        """Seconds of audio produced so far (held frame included)."""
        self.timestamps: list[WordTimestamp] = []
        self.late_words = 0
        """Words timed after their sentence's last frame went out (not delivered)."""

    @property
    def texts(self) -> list[str]:
        """The sentences, in the order they were sent."""
        return [segment.text for segment in self._segments]

    def add_sentence(self, text: str, context_id: str, flush_id: int) -> None:
        """A sentence was sent on ``context_id``; its audio will carry ``flush_id``."""
        self._segments.append(_Segment(len(self._segments), text, context_id, flush_id))

    def _find(self, context_id: str, flush_id: object) -> _Segment | None:
        mine = [s for s in self._segments if s.context_id == context_id]
        if isinstance(flush_id, int) and not isinstance(flush_id, bool):
            # The first id a context's messages carry is its first sentence's
            # (1 by the reference; a server counting from 0 is read alike).
            wanted = flush_id - self._first_flush_id.setdefault(context_id, flush_id) + 1
            for segment in mine:
                if segment.flush_id == wanted:
                    return segment
        open_ = [s for s in mine if not s.ended]
        return open_[0] if open_ else (mine[-1] if mine else None)

    def _at(self, context_id: str, time: float) -> _Segment | None:
        """The sentence whose audio was under way at ``time`` (seconds of its context)."""
        started = [
            s
            for s in self._segments
            if s.context_id == context_id and s.start is not None and s.start <= time + _EPSILON
        ]
        return started[-1] if started else self._find(context_id, None)

    def audio(self, context_id: str, flush_id: object, pcm: bytes) -> list[SynthesizedAudio]:
        """Frames for a chunk of a context's audio (possibly none yet)."""
        segment = self._find(context_id, flush_id)
        if segment is None:
            return []
        out: list[SynthesizedAudio] = []
        if segment is not self._current:
            # Audio of a later sentence: the ones before it are complete.
            for earlier in self._segments[: segment.index]:
                if not earlier.ended:
                    out += self._end(earlier)
            self._current = segment
        self._context_start.setdefault(context_id, self.seconds)
        received = self._context_bytes.get(context_id, 0)
        if segment.start is None and pcm:
            segment.start = received / 2 / self.sample_rate
        self._context_bytes[context_id] = received + len(pcm)
        segment.pending += pcm
        while len(segment.pending) >= self._frame_bytes:
            out += self._emit(segment, bytes(segment.pending[: self._frame_bytes]))
            del segment.pending[: self._frame_bytes]
        return out

    def end_sentence(self, context_id: str, flush_id: object) -> list[SynthesizedAudio]:
        """A ``flush_done``: the sentence's audio is complete."""
        segment = self._find(context_id, flush_id)
        return self._end(segment) if segment is not None and not segment.ended else []

    def end_context(self, context_id: str) -> list[SynthesizedAudio]:
        """A ``done`` (or a context given up): its sentences are complete."""
        out: list[SynthesizedAudio] = []
        for segment in self._segments:
            if segment.context_id == context_id and not segment.ended:
                out += self._end(segment)
        return out

    def finish(self) -> list[SynthesizedAudio]:
        """The stream ends: every sentence is complete."""
        out: list[SynthesizedAudio] = []
        for segment in self._segments:
            if not segment.ended:
                out += self._end(segment)
        if self._held is not None:  # a frame of audio that came after its sentence ended
            held, self._held = self._held, None
            self._held_segment = None
            held.segment_end = True
            out.append(held)
        return out

    def add_timestamps(self, context_id: str, flush_id: object, words: object, starts: object, ends: object) -> None:
        """Record a ``timestamps`` message (times relative to its context's audio).

        Its words go out on the next frame of their sentence, or on the
        sentence's last frame if it is still held back.
        """
        if not (isinstance(words, list) and isinstance(starts, list) and isinstance(ends, list)):
            return
        tagged = isinstance(flush_id, int) and not isinstance(flush_id, bool)
        touched: list[_Segment] = []
        for word, start, end in zip(words, starts, ends, strict=False):
            if not (isinstance(word, str) and _is_time(start) and _is_time(end)):
                continue
            word = _TAGS.sub("", word).strip()
            if not word:  # a pause or a voice control: counting it would keep a word unheard
                continue
            segment = self._find(context_id, flush_id) if tagged else self._at(context_id, float(start))
            if segment is None:
                continue
            offset = self._context_start.get(context_id, self.seconds)
            self.timestamps.append(WordTimestamp(word, offset + float(start), offset + float(end), segment.index))
            segment.stamps.append((word, float(start), float(end)))
            if segment not in touched:
                touched.append(segment)
        for segment in touched:
            if self._held is not None and self._held_segment is segment:
                self._held.words += self._timings(segment)
            elif segment.ended:
                self.late_words += len(segment.stamps)  # its audio is all out: no frame left to carry them
                segment.stamps.clear()

    def _timings(self, segment: _Segment) -> tuple[WordTiming, ...]:
        """The segment's waiting words, on its own timeline (it has audio by now)."""
        if not segment.stamps or segment.start is None:
            return ()
        stamps, segment.stamps = segment.stamps, []
        if segment.own_timeline is None:
            # Times run on the context's audio (the reference's sense, and
            # what peers read); a server that restarts them at each flush
            # shows it by timing the sentence's first word well before the
            # sentence began.
            segment.own_timeline = segment.start > 0 and stamps[0][1] < segment.start / 2
        zero = 0.0 if segment.own_timeline else segment.start
        return tuple(WordTiming(word, max(0.0, start - zero), max(0.0, end - zero)) for word, start, end in stamps)

    def _emit(self, segment: _Segment, data: bytes) -> list[SynthesizedAudio]:
        text = "" if segment.tagged else segment.text
        segment.tagged = True
        audio = SynthesizedAudio(AudioFrame(data, self.sample_rate), text, words=self._timings(segment))
        self.seconds += audio.frame.duration
        held, self._held = self._held, audio
        self._held_segment = segment
        return [held] if held is not None else []

    def _end(self, segment: _Segment) -> list[SynthesizedAudio]:
        segment.ended = True
        out: list[SynthesizedAudio] = []
        rest = bytes(segment.pending[: len(segment.pending) - len(segment.pending) % 2])
        segment.pending.clear()
        if rest:
            out += self._emit(segment, rest)
        if self._held is not None and segment is self._current:
            held, self._held = self._held, None
            self._held_segment = None
            held.words += self._timings(segment)
            held.segment_end = True
            out.append(held)
        return out


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
