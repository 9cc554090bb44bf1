"""The text side of a streamed utterance: what is sent, and which sentence is which.

Words go to the server as the LLM writes them (a word is sent once the
white space after it arrives, so no message ends inside a word) and each
sentence end sends a flush, so the server speaks the sentence now rather
than waiting for its buffer to fill. The sentences (from
:class:`~vocalis.text.SentenceChunker`) are the segments the audio is
labelled with. Every position here counts non-space characters only: the
server's alignment echoes the text with its own spacing, and counting
letters, digits and punctuation keeps both sides in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vocalis.text import SentenceChunker, speakable
from vocalis_elevenlabs.protocol import END_OF_INPUT, text_message

_LAST_SPACE = re.compile(r"\s(?=\S*$)")


@dataclass(frozen=True, slots=True)
class Segment:
    """A sentence of the utterance and where its characters are.

    Attributes:
        text: The sentence, stripped.
        start: Position of its first non-space character in the utterance.
        end: Position just past its last non-space character.
        speakable: Whether it has anything to say (letters or digits).
    """

    text: str
    start: int
    end: int
    speakable: bool


def count_chars(text: str) -> int:
    """How many non-space characters ``text`` has."""
    return sum(1 for ch in text if not ch.isspace())


def split_after(text: str, count: int) -> tuple[str, str]:
    """Cut ``text`` just after its ``count``-th non-space character."""
    if count <= 0:
        return "", text
    seen = 0
    for index, ch in enumerate(text):
        if not ch.isspace():
            seen += 1
            if seen == count:
                return text[: index + 1], text[index + 1 :]
    return text, ""


class TextLedger:
    """Turns pushed text into server messages and sentence segments.

    Args:
        whole_sentences: Send only whole sentences (for the server's
            ``auto_mode``, which speaks every message at once and sounds
            poor on fragments); otherwise words are sent as they come.
    """

    def __init__(self, *, whole_sentences: bool = False) -> None:
        self._whole = whole_sentences
        self._chunker = SentenceChunker()
        self._pending = ""  # pushed but not sent
        self._ended = False
        self.chars: list[str] = []
        """The non-space characters sent so far, in order."""
        self.segments: list[Segment] = []
        """The sentences released so far, in order."""

    @property
    def ended(self) -> bool:
        """Whether :meth:`end` was called."""
        return self._ended

    @property
    def segmented(self) -> int:
        """Position just past the last segment's characters."""
        return self.segments[-1].end if self.segments else 0

    def push(self, text: str) -> list[str]:
        """Add text; return the messages to send now."""
        self._pending += text
        messages: list[str] = []
        for sentence in self._chunker.push(text):
            messages += self._release(sentence)
        if not self._whole:
            messages += self._send_words()
        return messages

    def flush(self) -> list[str]:
        """Speak what is pending now: the rest becomes a segment and is flushed."""
        messages: list[str] = []
        for sentence in self._chunker.flush():
            messages += self._release(sentence)
        return messages

    def end(self) -> list[str]:
        """No more text: flush the rest, then the end-of-input message."""
        if self._ended:
            return []
        messages = self.flush()
        self._ended = True
        return [*messages, END_OF_INPUT]

    def cut_sent(self) -> None:
        """Make a segment of the text sent but not yet released as a sentence.

        The server speaks text once its buffer is long enough, before the
        sentence ends: its audio then needs a label before the sentence is
        complete. The part still unsent (a word being written) stays pending.
        """
        unsegmented = len(self.chars) - self.segmented
        if unsegmented <= 0:
            return
        rest = "".join(self._chunker.flush())
        head, tail = split_after(rest, unsegmented)
        self._add_segment(head.strip())
        # The first-chunk shortcut is for the first audio, which is playing now.
        self._chunker = SentenceChunker(first_chunk_chars=0)
        if tail.strip():
            self._chunker.push(tail)

    def _release(self, sentence: str) -> list[str]:
        self._add_segment(sentence)
        missing = self.segmented - len(self.chars)
        head = ""
        if missing > 0:
            head, self._pending = split_after(self._pending, missing)
            self._sent(head)
        return [text_message(head, flush=True)]

    def _add_segment(self, sentence: str) -> None:
        start = self.segmented
        self.segments.append(Segment(sentence, start, start + count_chars(sentence), speakable(sentence)))

    def _send_words(self) -> list[str]:
        match = _LAST_SPACE.search(self._pending)
        if match is None:
            return []
        head, self._pending = self._pending[: match.end()], self._pending[match.end() :]
        if not head.strip():
            return []
        self._sent(head)
        return [text_message(head)]

    def _sent(self, text: str) -> None:
        self.chars.extend(ch for ch in text if not ch.isspace())
