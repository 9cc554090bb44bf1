"""Stopping a reply that starts repeating itself.

Small language models sometimes fall into a loop ("I'm here to help. I'm
here to help. ...") until their token cap, which in a voice reply means a
minute of the same sentence. :class:`LoopGuard` watches the reply's text as
it streams and stops it at the first sentence said a second time, or at a
phrase repeated a third time when the model stopped writing sentence ends.

The repeated sentence itself is not spoken: text that could be the start of
an earlier sentence again is held back until it either completes the repeat
(dropped) or goes its own way (passed on). Text that resembles nothing said
before passes at once, so the guard adds no delay to an ordinary reply.
"""

from __future__ import annotations

import re
from collections import Counter

# A sentence ends at . ! ? or … followed by white space (not "3.5", not "e.g.x").
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*\s")
_WORD = re.compile(r"[\w']+")

MIN_SENTENCE_WORDS = 3
"""Shorter sentences ("Yes.", "Thank you.") may well be said twice."""

PHRASE_WORDS = 6
"""Length of the word run counted for a loop without sentence ends."""

PHRASE_REPEATS = 3
"""A run of ``PHRASE_WORDS`` words seen this often is a loop."""


def _normalize(text: str) -> str:
    return " ".join(word.lower() for word in _WORD.findall(text))


class LoopGuard:
    """Watches one reply's text; says what to pass on and when to stop."""

    def __init__(self) -> None:
        self._said: set[str] = set()  # normalized sentences of this reply
        self._sentence = ""  # the current sentence so far (raw)
        self._held = ""  # its tail not passed on yet
        self._words: list[str] = []  # the last words, at most a phrase's worth
        self._partial = ""  # a word that the next text may continue
        self._phrases: Counter[tuple[str, ...]] = Counter()
        self.stopped = False

    def feed(self, text: str) -> str:
        """Take the next text of the reply.

        Returns:
            What may be spoken now. Once :attr:`stopped` is set, the reply
            should end: the text returned then is the last.
        """
        out: list[str] = []
        rest = text
        while rest and not self.stopped:
            match = self._sentence_end(rest)
            if match is None:
                self._extend(rest, out)
                break
            cut = match.end() - len(self._sentence)
            self._extend(rest[:cut], out)
            rest = rest[cut:]
            self._end_sentence(out)
        return "".join(out)

    def _sentence_end(self, rest: str) -> re.Match[str] | None:
        """The first sentence end that ``rest`` completes (its punctuation may
        have come in the text before)."""
        joined = self._sentence + rest
        for match in _SENTENCE_END.finditer(joined, max(0, len(self._sentence) - 8)):
            if match.end() > len(self._sentence):
                return match
        return None

    def flush(self) -> str:
        """The reply's text ended: what is still held back, unless it repeats."""
        if self.stopped:
            return ""
        out: list[str] = []
        self._end_sentence(out)
        return "".join(out)

    def _extend(self, text: str, out: list[str]) -> None:
        self._sentence += text
        self._held += text
        if self._phrase_loop(text):
            self.stopped = True
            self._held = ""
            return
        if not self._could_repeat(self._sentence):
            out.append(self._held)
            self._held = ""

    def _end_sentence(self, out: list[str]) -> None:
        normalized = _normalize(self._sentence)
        if len(normalized.split()) >= MIN_SENTENCE_WORDS and normalized in self._said:
            self.stopped = True
            self._held = ""
            return
        if normalized:
            self._said.add(normalized)
        out.append(self._held)
        self._sentence = self._held = ""

    def _could_repeat(self, sentence: str) -> bool:
        """Whether the sentence so far may be an earlier one starting again."""
        normalized = _normalize(sentence)
        if not normalized:
            return False
        return any(said.startswith(normalized) for said in self._said)

    def _phrase_loop(self, text: str) -> bool:
        joined = self._partial + text.lower()
        words = _WORD.findall(joined)
        # A word at the very end may continue in the next text.
        self._partial = words.pop() if words and _WORD.fullmatch(joined[-1:]) else ""
        self._words.extend(words)
        while len(self._words) >= PHRASE_WORDS:
            phrase = tuple(self._words[:PHRASE_WORDS])
            del self._words[0]
            self._phrases[phrase] += 1
            if self._phrases[phrase] >= PHRASE_REPEATS:
                return True
        return False
