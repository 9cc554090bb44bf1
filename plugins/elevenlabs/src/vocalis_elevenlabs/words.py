"""Word timings of a streamed utterance, from the server's character alignment.

A word is a maximal run of non-space characters of a sentence's text; it
starts where its first character starts and ends where its last one ends.
It is complete once its last character is aligned, and then waits for the
next frame of its sentence that goes out (:attr:`SynthesizedAudio.words
<vocalis.providers.tts.SynthesizedAudio.words>`), timed from that
sentence's first audio sample. A word completed after its sentence's last
frame went out has no frame left to ride on and is dropped: the session
then cuts that sentence in proportion instead.

Sentences here are the frames' labels: one label may hold several of the
ledger's segments (those that start within one frame), so a "group" is the
segments one labelled frame started, and its words are timed from that frame.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from vocalis.providers.tts import WordTiming
from vocalis_elevenlabs.ledger import Segment, TextLedger


def word_spans(segment: Segment) -> list[tuple[str, int, int]]:
    """The words of ``segment``: ``(word, first position, position past its last)``.

    Positions count non-space characters of the utterance, as the ledger does.
    """
    spans: list[tuple[str, int, int]] = []
    position = segment.start
    for word in segment.text.split():
        end = min(position + len(word), segment.end)
        if end > position:
            spans.append((word, position, end))
        position = end
    return spans


class WordClock:
    """Times the ledger's words as their characters are aligned, and hands them to frames.

    Args:
        ledger: The text sent, and its sentences.
        sample_rate: Rate of the audio (sample positions are turned into seconds).
    """

    def __init__(self, ledger: TextLedger, sample_rate: int) -> None:
        self._ledger = ledger
        self._rate = sample_rate
        self._segment = 0  # the ledger segment whose words are being completed
        self._spans: list[tuple[str, int, int]] | None = None  # its words
        self._next = 0  # its first word not complete yet
        # Complete words not sent yet: (segment, word, start sample, end sample).
        self._done: deque[tuple[int, str, int, int]] = deque()
        self._group_of: dict[int, int] = {}  # segment -> the group (labelled frame) it started in
        self._origins: list[int] = []  # per group: the sample where its first frame starts
        self.late = 0
        """Words completed after their sentence's last frame went out (dropped)."""

    def advance(self, starts: Sequence[int], ends: Sequence[int]) -> None:
        """Take in the words whose characters are now all aligned.

        Args:
            starts: Per aligned position, the sample where it starts.
            ends: Per aligned position, the sample where it ends.
        """
        segments = self._ledger.segments
        while self._segment < len(segments):
            segment = segments[self._segment]
            if self._spans is None:
                # A segment with nothing to say is never a frame's label: no words.
                self._spans = word_spans(segment) if segment.speakable else []
            while self._next < len(self._spans):
                word, first, end = self._spans[self._next]
                if end > len(ends):
                    return
                start = starts[first]
                self._done.append((self._segment, word, start, max(start, ends[end - 1])))
                self._next += 1
            self._segment, self._spans, self._next = self._segment + 1, None, 0

    def start_group(self, segments: Sequence[int], origin: int) -> int:
        """A frame starting at sample ``origin`` is labelled with ``segments``; returns its group."""
        self._origins.append(origin)
        group = len(self._origins) - 1
        self.join(segments, group)
        return group

    def join(self, segments: Sequence[int], group: int) -> None:
        """Put ``segments`` in ``group`` too (their text was added to its label)."""
        for index in segments:
            self._group_of[index] = group

    def take(self, group: int | None) -> tuple[WordTiming, ...]:
        """The complete words of ``group`` not sent yet, for a frame of it going out.

        Words of earlier groups still waiting are dropped: those groups'
        frames have all gone out.
        """
        if group is None:
            return ()
        origin = self._origins[group]
        words: list[WordTiming] = []
        while self._done:
            segment, word, start, end = self._done[0]
            owner = self._group_of.get(segment)
            if owner is None or owner > group:
                break  # a sentence whose audio has not started yet
            self._done.popleft()
            if owner < group:
                self.late += 1
                continue
            words.append(WordTiming(word, self._seconds(start - origin), self._seconds(end - origin)))
        return tuple(words)

    def _seconds(self, samples: int) -> float:
        # A word begun before its sentence's first frame (a late boundary) starts with it.
        return max(0.0, samples / self._rate)
