"""Splitting streamed LLM text into speakable chunks."""

from __future__ import annotations

import re
import unicodedata

_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e approx no fig inc ltd co jan feb mar apr "
    "jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun a.m p.m u.s".split()
)
# A newline is itself the white space after the boundary (an empty group 1 before it).
_BOUNDARY = re.compile(r"([.!?…]+[\"')\]]*|[;:]|(?=\n))(\s+)")
# Words that start a clause: a first chunk with no comma may end before one.
_CLAUSE_START = re.compile(r" (?=(?:that|which|who|and|but|or|so|because|when|while|if|with|for|to) )")


class SentenceChunker:
    """Collects text deltas and releases whole sentences.

    Sentence ends are ``.``, ``!``, ``?`` (and ``;``/``:``/newlines) followed by
    white space; abbreviations ("Dr.", "e.g.") and numbers ("3.5") do not end
    a sentence. The first chunk may be cut at a comma once it is long enough
    so the first audio comes sooner, or, when a long first sentence has no
    comma, before a word that starts a clause ("that", "and", "with"...).

    Args:
        min_chars: A sentence shorter than this is joined with the next.
        first_chunk_chars: Cut the first chunk at a comma past this length
            (0 disables it), or before a clause's first word past twice it.
        max_chars: Text without a sentence end is cut (at a comma, else a
            space) once it grows this long.
    """

    def __init__(self, *, min_chars: int = 8, first_chunk_chars: int = 24, max_chars: int = 160) -> None:
        self.min_chars = min_chars
        self.first_chunk_chars = first_chunk_chars
        self.max_chars = max_chars
        self._buffer = ""
        self._emitted = False

    def push(self, text: str) -> list[str]:
        """Add text; return the sentences it completed (maybe none)."""
        self._buffer += text
        out: list[str] = []
        start = 0
        for match in _BOUNDARY.finditer(self._buffer):
            end = match.end(1)
            candidate = self._buffer[start:end].strip()
            if not candidate or len(candidate) < self.min_chars or _ends_with_abbreviation(candidate):
                continue
            out.append(candidate)
            start = match.end()
        if not out and not self._emitted and self.first_chunk_chars:
            cut = self._buffer.rfind(", ", 0)
            if cut >= self.first_chunk_chars:
                out.append(self._buffer[: cut + 1].strip())
                start = cut + 2
            elif cut < 0 and len(self._buffer) >= 2 * self.first_chunk_chars:
                clauses = [m.start() for m in _CLAUSE_START.finditer(self._buffer, self.first_chunk_chars)]
                # Only where a few words follow: the next one may yet end the sentence.
                clauses = [c for c in clauses if len(self._buffer) - c > 12]
                if clauses:
                    out.append(self._buffer[: clauses[-1]].strip())
                    start = clauses[-1] + 1
        rest = self._buffer[start:]
        while len(rest) > self.max_chars:
            # Run-on text without sentence ends: cut at a comma or a space
            # rather than make the listener wait for the whole reply.
            window = rest[: self.max_chars]
            cut = max(window.rfind(", "), window.rfind("; "))
            cut = cut + 1 if cut > self.max_chars // 3 else window.rfind(" ")
            if cut <= 0:
                cut = self.max_chars
            piece = rest[:cut].strip()
            if piece:  # a cut inside leading white space leaves nothing to say
                out.append(piece)
            rest = rest[cut:].lstrip()
        self._buffer = rest
        if out:
            self._emitted = True
        return out

    def flush(self) -> list[str]:
        """Release whatever is left (end of the reply)."""
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []

    def reset(self) -> None:
        """Forget pending text (a new reply starts)."""
        self._buffer = ""
        self._emitted = False


def _ends_with_abbreviation(text: str) -> bool:
    if not text.endswith("."):
        return False
    words = text[:-1].rsplit(None, 1)
    if not words:  # a lone "."
        return False
    word = words[-1].lower().lstrip("(\"'")
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


# C0/C1 controls other than tab, newline and carriage return; lone UTF-16 surrogates.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Make text from outside (typed input, a client) safe to pass on.

    Control characters are dropped (those that are white space, like a form
    feed, become a space) and lone surrogates, which cannot be encoded as
    UTF-8 and so would fail in any HTTP or WebSocket provider, become U+FFFD.
    Everything else (emoji, RTL marks, combining accents) is kept as is.
    """
    text = _CONTROL.sub(lambda m: " " if m.group().isspace() else "", text)
    return _SURROGATE.sub("\ufffd", text)


def has_text(text: str) -> bool:
    """Whether text has anything visible (not only white space or format marks)."""
    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


def speakable(text: str) -> bool:
    """Whether text has anything a TTS can say (letters or digits)."""
    return any(ch.isalnum() for ch in text)


def text_argument(value: object, method: str, name: str) -> str:
    """``value`` cleaned (:func:`clean_text`), when it is a str.

    Raises:
        TypeError: Not a str: a caller's bug worth a clear message naming
            ``method`` and its argument ``name``.
    """
    if not isinstance(value, str):
        raise TypeError(f"{method}() expects {name} as a str, not {type(value).__name__}")
    return clean_text(value)


def split_text(text: str, limit: int) -> list[str]:
    """Cut ``text`` into speakable pieces of at most ``limit`` characters.

    For APIs that cap one request's text (hosted TTS): cuts after the last
    sentence end within the limit, else at the last space, else (one
    enormous word) at the limit itself.
    """
    pieces: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = max(window.rfind(mark) for mark in (". ", "! ", "? ", "\n")) + 1
        if cut <= 0:
            cut = window.rfind(" ") + 1 or limit
        pieces.append(text[:cut].strip())
        text = text[cut:].strip()
    pieces.append(text)
    return [piece for piece in pieces if speakable(piece)]
