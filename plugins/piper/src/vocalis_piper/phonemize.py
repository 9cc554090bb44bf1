"""IPA phonemes from espeak-ng, split into sentences the way Piper does.

espeak-ng comes from the ``espeakng-loader`` wheel (a prebuilt
``libespeak-ng`` plus its data) and is driven through ctypes. The library is
process-global and not thread-safe, so every call goes through one lock.

Piper's own phonemizer uses a patched ``espeak_TextToPhonemesWithTerminator``
to learn which punctuation ended each clause; the stock library has only
``espeak_TextToPhonemes``, which drops punctuation. It does, however, advance
the text pointer clause by clause, so the punctuation that ended a clause is
read back from the consumed source text and re-inserted into the phonemes.
Piper voices were trained with that punctuation and use it for prosody
(a falling "." versus a rising "?", pauses at commas).
"""

from __future__ import annotations

import ctypes
import re
import threading
import unicodedata
from pathlib import Path

_AUDIO_OUTPUT_SYNCHRONOUS = 2  # no playback thread, no audio device
_INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
_CHARS_UTF8 = 1
_PHONEMES_IPA = 0x02

# Punctuation espeak ends a clause on, as Piper re-inserts it.
_CLAUSE_PUNCTUATION = {".": ".", "?": "?", "!": "!", ",": ", ", ":": ": ", ";": "; "}
_SENTENCE_END = {".", "?", "!"}
_CLOSERS = re.escape("\"'”’»)]}")
# espeak reads one character of the next clause ahead, so the terminator of a
# clause is the last punctuation mark followed by white space and that
# partial next word (or by nothing at the very end of the text).
_TERMINATOR_INNER = re.compile(rf"([.?!,:;])[{_CLOSERS}]*\s+\S*$")
_TERMINATOR_LAST = re.compile(rf"([.?!,:;])[{_CLOSERS}]*\s*$")
# "(en)"/"(fr)" language-switch markers espeak inserts around foreign words.
_LANGUAGE_FLAG = re.compile(r"\([a-z]{2,3}(?:-[a-z0-9]+)*\)")
# Titles espeak ends a clause on ("Dr. Smith") although the sentence goes on.
_TITLES = frozenset(["mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs"])
_LAST_WORD = re.compile(r"(\w+)\.\s+\S*$")


class EspeakError(RuntimeError):
    """espeak-ng could not be loaded or does not know the requested voice."""


class _Espeak:
    """The process-wide espeak-ng library, initialised once."""

    def __init__(self) -> None:
        import espeakng_loader

        self.lock = threading.Lock()
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as exc:
            raise EspeakError(f"cannot load libespeak-ng: {exc}") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        data_path = str(Path(espeakng_loader.get_data_path()))
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed with data at {data_path}")
        self.lib = lib
        self.voice: str | None = None

    def set_voice(self, voice: str) -> None:
        """Select a voice; caller holds :attr:`lock`."""
        if voice == self.voice:
            return
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            self.voice = None  # unknown state: select again next time
            raise EspeakError(f"espeak-ng has no voice {voice!r}")
        self.voice = voice

    def clauses(self, text: str) -> list[tuple[str, str]]:
        """Phonemes and source text of each clause; caller holds :attr:`lock`."""
        raw = text.encode("utf-8")
        buffer = ctypes.create_string_buffer(raw)
        base = ctypes.addressof(buffer)
        pointer = ctypes.c_void_p(base)
        out: list[tuple[str, str]] = []
        start = 0
        while pointer.value:
            phonemes = self.lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, _PHONEMES_IPA)
            end = pointer.value - base if pointer.value else len(raw)
            source = raw[start:end].decode("utf-8", errors="ignore")
            out.append(((phonemes or b"").decode("utf-8", errors="ignore"), source))
            start = end
        return out


_espeak: _Espeak | None = None
_espeak_lock = threading.Lock()


def _get_espeak() -> _Espeak:
    global _espeak
    with _espeak_lock:
        if _espeak is None:
            _espeak = _Espeak()
        return _espeak


def phonemize(text: str, voice: str = "en-us") -> list[str]:
    """Turn text into IPA phoneme strings, one per sentence.

    Clause punctuation (``. ? ! , : ;``) is kept in the phonemes, as Piper
    voices expect; each sentence is NFD-normalised so that combining marks
    are separate symbols, matching Piper's phoneme ids.

    Args:
        text: Any text; empty or unspeakable text gives an empty list.
        voice: The espeak-ng voice, e.g. ``"en-us"`` (from the voice's
            ``.onnx.json``).

    Returns:
        Phoneme strings, one per sentence; sentences with no phonemes are
        left out.

    Raises:
        EspeakError: The library cannot be loaded or the voice is unknown.
    """
    # NUL would end the C string early; control characters carry no speech.
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    if not text:
        return []
    espeak = _get_espeak()
    with espeak.lock:
        espeak.set_voice(voice)
        clauses = espeak.clauses(text)
    sentences: list[str] = []
    current = ""
    for index, (phonemes, source) in enumerate(clauses):
        phonemes = _LANGUAGE_FLAG.sub("", phonemes).strip()
        pattern = _TERMINATOR_LAST if index == len(clauses) - 1 else _TERMINATOR_INNER
        match = pattern.search(source)
        mark = match.group(1) if match else ""
        if mark == "." and _is_title(source):
            mark = ""
        if phonemes:
            if current and not current.endswith(" "):
                current += " "
            current += phonemes + _CLAUSE_PUNCTUATION.get(mark, "")
        if mark in _SENTENCE_END and current.strip():
            sentences.append(current.strip())
            current = ""
    if current.strip():
        sentences.append(current.strip())
    return [unicodedata.normalize("NFD", sentence) for sentence in sentences]


def _is_title(source: str) -> bool:
    match = _LAST_WORD.search(source)
    return match is not None and match.group(1).lower() in _TITLES
