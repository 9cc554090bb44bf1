"""The audio side of a streamed utterance: PCM chunks into labelled frames.

The server's alignment gives, for the characters of each audio chunk, when
each starts and how long it lasts, in milliseconds from that chunk's start
(on every chunk with ``sync_alignment``, else on the first chunk of each
generation). Matched against the characters sent (:class:`TextLedger`),
it tells where in the audio each sentence ends and the next begins: frames
are cut there, the first frame of each sentence carries its text and the
last one ``segment_end``, so the session knows what the listener heard when
a reply is cut short. A sentence's last frame goes out as soon as its last
character has played; the pause after it then leads into the next sentence
(it waits for that sentence's audio), so no frame of a sentence ever follows
the one that ended it, and a fallback can take over at that boundary. The
sentence's words, timed from the same alignment
(:class:`~vocalis_elevenlabs.words.WordClock`), ride on its frames, so an
interrupted sentence keeps exactly the words played.

Without any alignment the sentence boundaries are unknown: the audio is
labelled with the first sentence, and the sentences never placed are put on
the last frame, so nothing is ever reported as heard before it was played.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from vocalis.audio import AudioFrame
from vocalis.providers.tts import SynthesizedAudio
from vocalis_elevenlabs.ledger import TextLedger
from vocalis_elevenlabs.protocol import Alignment
from vocalis_elevenlabs.words import WordClock

# How far ahead in the text sent an aligned character is looked for: the
# server may leave out a character (a symbol it does not say).
_LOOKAHEAD = 8

# Audio after a complete sentence waits for the next sentence to lead into,
# at most this long: audio the alignment cannot place (a character the server
# changed) then goes out unlabelled rather than stalling.
_MAX_GAP_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class CharTiming:
    """When a character of the text sent is spoken.

    Attributes:
        char: The character.
        start: Seconds from the utterance's first audio sample.
        end: Seconds from the utterance's first audio sample.
    """

    char: str
    start: float
    end: float


class AudioTimeline:
    """Cuts an utterance's PCM into frames labelled with their sentences.

    Args:
        ledger: The text sent, and its sentences.
        sample_rate: Rate of the PCM.
        frame_samples: Samples per frame (frames at a sentence boundary are shorter).
    """

    def __init__(self, ledger: TextLedger, sample_rate: int, frame_samples: int) -> None:
        self._ledger = ledger
        self._rate = sample_rate
        self._frame = frame_samples
        self._max_gap = 2 * round(sample_rate * _MAX_GAP_SECONDS)  # bytes
        self._unplaceable = False  # a pause outgrew the limit: its audio goes out unlabelled
        self._pcm = bytearray()  # received, not yet framed
        self._received = 0  # samples received
        self._emitted = 0  # samples framed
        self._starts: list[int] = []  # per aligned position: sample where it starts
        self._ends: list[int] = []  # per aligned position: sample where it ends
        self._current = -1  # index of the segment whose audio is being framed
        self._ended = -1  # index of the last segment whose last frame was marked
        self._held: SynthesizedAudio | None = None
        self._group: int | None = None  # the word group of the frames being cut (None: unlabelled)
        self._held_group: int | None = None
        self._words = WordClock(ledger, sample_rate)
        self.timings: list[CharTiming] = []
        """Every aligned character, in order."""

    @property
    def aligned(self) -> bool:
        """Whether any alignment arrived."""
        return bool(self._starts)

    def add(self, pcm: bytes, alignment: Alignment | None) -> list[SynthesizedAudio]:
        """Take one chunk of audio (and its alignment); return the frames ready.

        The last frame is held back until the next chunk shows whether a
        new sentence starts after it (or the alignment shows its sentence is
        complete), so that it can carry ``segment_end``.
        """
        chunk_start = self._received
        if alignment is not None:
            self._align(alignment, chunk_start)
        if (self.aligned and len(self._starts) > self._ledger.segmented) or not self._ledger.segments:
            # The server speaks text whose sentence is not complete yet.
            self._ledger.cut_sent()
        if alignment is not None:
            self._words.advance(self._starts, self._ends)
        self._pcm += pcm
        self._received = self._emitted + len(self._pcm) // 2
        out = self._cut(final=False)
        self._release_if_complete(out)
        return out

    def finish(self) -> list[SynthesizedAudio]:
        """The audio is complete: frame the rest and end the last segment."""
        out = self._cut(final=True)
        held, self._held = self._held, None
        if held is None:
            return out
        # Sentences no audio was placed on (no alignment) go on the last frame:
        # heard only if the utterance plays to its end.
        segments = self._ledger.segments
        unplaced = [i for i in range(self._current + 1, len(segments)) if segments[i].speakable]
        if unplaced:
            self._current = len(segments) - 1
            held = replace(held, text=" ".join(t for t in (held.text, *(segments[i].text for i in unplaced)) if t))
            if self._held_group is not None:
                self._words.join(unplaced, self._held_group)
        out.append(self._release(held, self._held_group, ends=True))
        return out

    @property
    def late_words(self) -> int:
        """Words timed after their sentence's last frame went out (dropped)."""
        return self._words.late

    def _align(self, alignment: Alignment, chunk_start: int) -> None:
        chars = self._ledger.chars
        for char, start_ms, duration_ms in zip(
            alignment.chars, alignment.starts_ms, alignment.durations_ms, strict=True
        ):
            if not char.strip():
                continue
            position = len(self._starts)
            if position >= len(chars):
                break  # more than was sent: nothing to match it with
            window = chars[position : position + _LOOKAHEAD]
            if char not in window:
                # Not in the text sent (a normalised spelling, a character
                # changed): skipped rather than counted, which could only
                # place the next sentence too early.
                continue
            skip = window.index(char)
            start = chunk_start + round(start_ms * self._rate / 1000)
            end = max(start, start + round(duration_ms * self._rate / 1000))
            # Characters the server left out start with the next one it said.
            self._starts.extend([start] * (skip + 1))
            self._ends.extend([start] * skip + [end])
            self.timings.append(CharTiming(chars[position + skip], start / self._rate, end / self._rate))

    def _boundary(self, index: int) -> int | None:
        """The sample where segment ``index`` starts, if its audio has been aligned."""
        start = self._ledger.segments[index].start
        return self._starts[start] if start < len(self._starts) else None

    def _boundary_after(self, index: int) -> int | None:
        nxt = self._next_speakable(index)
        return self._boundary(nxt) if nxt is not None else None

    def _segment_end(self, index: int) -> int | None:
        """The sample where segment ``index``'s last character ends, once aligned."""
        if index < 0:
            return None
        last = self._ledger.segments[index].end - 1
        return self._ends[last] if 0 <= last < len(self._ends) else None

    def _next_speakable(self, after: int) -> int | None:
        segments = self._ledger.segments
        return next((i for i in range(after + 1, len(segments)) if segments[i].speakable), None)

    def _cut(self, *, final: bool) -> list[SynthesizedAudio]:
        out: list[SynthesizedAudio] = []
        while len(self._pcm) >= 2:
            # The segments this frame starts: the first one at the first frame;
            # right after a sentence whose last frame went out, the next one
            # once its audio has begun (the pause between them leads into it:
            # no frame of a sentence follows the one that ended it); then
            # each whose aligned start the audio has reached.
            current, started = self._current, list[int]()
            opening = current < 0 or current <= self._ended
            while (nxt := self._next_speakable(current)) is not None:
                at = self._boundary(nxt)
                if not (opening and not started and (current < 0 or at is not None)):
                    if at is None or at > self._emitted:
                        break
                started.append(nxt)
                current = nxt
            if opening and current >= 0 and not started and not final and not self._unplaceable:
                if len(self._pcm) < self._max_gap:
                    # A pause after a sentence, before the next one's audio: it
                    # waits (and is dropped if the stream fails here, so that
                    # the reply can go on from this boundary elsewhere).
                    break
                self._unplaceable = True  # until a sentence starts again
            if started:
                self._unplaceable = False
            # A frame ends early where a sentence starts or ends, so that its
            # first frame starts on time and its last can be sent at once.
            size = self._frame
            for stop in (self._segment_end(current), self._boundary_after(current)):
                if stop is not None and stop > self._emitted:
                    size = min(size, stop - self._emitted)
            available = len(self._pcm) // 2
            if available < size and not final:
                break
            size = min(size, available)
            frame = AudioFrame(bytes(self._pcm[: 2 * size]), self._rate)
            del self._pcm[: 2 * size]
            if started:
                self._group = self._words.start_group(started, self._emitted)
            self._emitted += size
            previous, self._current = self._current, current
            text = " ".join(self._ledger.segments[i].text for i in started)
            self._push(out, SynthesizedAudio(frame, text), ends=bool(started) and previous > self._ended)
            if started:
                self._ended = max(self._ended, previous)
            self._release_if_complete(out)
        if final:
            self._pcm.clear()  # an odd trailing byte is half a sample
        return out

    def _push(self, out: list[SynthesizedAudio], audio: SynthesizedAudio, *, ends: bool) -> None:
        """Send the held frame (``ends``: it is its segment's last) and hold ``audio``."""
        if self._held is not None:
            out.append(self._release(self._held, self._held_group, ends=ends))
        self._held, self._held_group = audio, self._group

    def _release(self, audio: SynthesizedAudio, group: int | None, *, ends: bool) -> SynthesizedAudio:
        """``audio`` going out, with its sentence's words timed since it was held."""
        return replace(audio, segment_end=ends, words=audio.words + self._words.take(group))

    def _release_if_complete(self, out: list[SynthesizedAudio]) -> None:
        """Send the held frame now if it ends its sentence: every character of
        the sentence is aligned and ends within the audio framed so far.

        Not the utterance's last sentence: what follows its last character
        (a pause) is still its own, and its last frame comes at the end."""
        if self._ledger.ended and self._next_speakable(self._current) is None:
            return
        end = self._segment_end(self._current)
        if self._held is not None and self._current > self._ended and end is not None and end <= self._emitted:
            out.append(self._release(self._held, self._held_group, ends=True))
            self._held = None
            self._ended = self._current
