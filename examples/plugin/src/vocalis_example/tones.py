"""The tone code both providers share: one beep per character.

Each character of :data:`ALPHABET` is a beep of its own pitch; beeps of one
word are separated by a short gap, words by a longer one. Everything else
(punctuation, emoji, control characters) is not spoken, so the STT gets back
the words, in lower case, without punctuation.
"""

from __future__ import annotations

import re
import unicodedata

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789'"
"""The characters that have a tone, in pitch order."""

BASE_HZ = 500.0
"""Pitch of the first character."""

STEP_HZ = 60.0
"""Pitch step between neighbouring characters: a 60 ms beep resolves it easily."""

_NOT_SPOKEN = re.compile(f"[^{re.escape(ALPHABET)}]+")


def frequency(char: str) -> float:
    """The pitch of one character of :data:`ALPHABET`."""
    return BASE_HZ + STEP_HZ * ALPHABET.index(char)


def character(hz: float) -> str | None:
    """The character whose pitch is nearest to ``hz``, or None when none is near."""
    index = round((hz - BASE_HZ) / STEP_HZ)
    if not 0 <= index < len(ALPHABET) or abs(hz - frequency(ALPHABET[index])) > STEP_HZ / 3:
        return None
    return ALPHABET[index]


def words(text: str) -> list[str]:
    """The words of ``text`` the code can speak: accents dropped, lower case.

    >>> words("Café, c'est ça! ✓")
    ['cafe', "c'est", 'ca']
    """
    # NFKD splits "é" into "e" plus a combining accent, which is then dropped.
    plain = unicodedata.normalize("NFKD", text.replace("\u2019", "'")).lower()
    spoken = _NOT_SPOKEN.sub(" ", plain)
    return [word.strip("'") for word in spoken.split() if word.strip("'")]
