"""Decoding on an encoder window fitted to the audio (``window="fit"``).

Whisper's encoder always sees 30 s: faster-whisper pads the mel features of a
2 s utterance with 28 s of zeros, and encoding that padding is most of the
cost of a short decode. CTranslate2 accepts shorter mel input, so here the
features are padded only to ``min(30 s, max(audio + 8 s, 10 s))``, encoded
once, and handed to faster-whisper's own segment loop, which keeps beam
search, temperature fallback and the no-speech check.

Less than about 8 s of trailing padding makes tiny.en repeat itself ("Turn
it up. Turn it up"), so the fitted decode is capped at a token budget and
its text is checked for loops; :func:`looks_looped` output is decoded again
on the full window by the caller.

This uses faster-whisper internals that are public in name but not
documented: ``WhisperModel.feature_extractor``, ``encode``,
``generate_segments`` and ``TranscriptionInfo.transcription_options``
(checked against faster-whisper 1.2.1 with CTranslate2 4.8.5, the versions
in uv.lock). No module global is patched, so other sessions and threads
decoding with the same model are unaffected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from faster_whisper import WhisperModel
    from faster_whisper.transcribe import Segment

FRAMES_PER_SECOND = 100  # mel frames: 10 ms hop at 16 kHz
FULL_WINDOW_SECONDS = 30.0
MIN_WINDOW_SECONDS = 10.0
TRAILING_SECONDS = 8.0
# More tokens than this per second of audio is a loop, not speech: fast
# speech with punctuation stays under 5.
MAX_TOKENS_PER_SECOND = 7.0
TOKEN_SLACK = 4
# Whisper's decoder holds 448 positions and faster-whisper keeps at most 224
# for the prompt; the budget must leave room for both.
_MAX_BUDGET = 200


def fit_window_frames(duration: float) -> int | None:
    """Mel frames of the fitted window for this much audio.

    Args:
        duration: Audio length in seconds.

    Returns:
        An even frame count, or None when the window would be the full 30 s
        (audio of 22 s or more), so that the ordinary decode applies.
    """
    seconds = min(FULL_WINDOW_SECONDS, max(duration + TRAILING_SECONDS, MIN_WINDOW_SECONDS))
    frames = math.ceil(seconds * FRAMES_PER_SECOND)
    frames += frames % 2  # the encoder's second convolution has stride 2
    if frames >= FULL_WINDOW_SECONDS * FRAMES_PER_SECOND:
        return None
    return frames


def token_budget(duration: float) -> int:
    """Most tokens a fitted decode may produce: one more than :func:`looks_looped` allows."""
    return min(_MAX_BUDGET, math.floor(MAX_TOKENS_PER_SECOND * duration) + TOKEN_SLACK + 1)


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def repeats_phrase(text: str) -> bool:
    """Whether the text runs into a repetition, the way a looping decoder does.

    Three patterns, all seen from tiny.en on too short a window:

    * after a sentence ends, the text starts over: "Turn off the lights in
      the living room. Turn", "Turn it up. Turn it up";
    * the text ends by repeating earlier words for at least two words:
      "I was wondering if you could, I was wondering", "no no no";
    * a phrase of three or more words is said twice in a row anywhere.

    Rare real speech ("to be or not to be") is caught too; that only costs a
    second decode.
    """
    sentences = [part for part in re.split(r"[.?!]+", text) if _words(part)]
    if len(sentences) > 1:
        first, last = _words(sentences[0]), _words(sentences[-1])
        if first[: len(last)] == last:
            return True
    words = _words(text)
    count = len(words)
    for period in range(1, count):
        run = 0  # words at the end that equal the word `period` places before
        for index in range(count - 1, period - 1, -1):
            if words[index] != words[index - period]:
                break
            run += 1
        if run >= 2:
            return True
        if period >= 3:
            for start in range(count - 2 * period + 1):
                if words[start : start + period] == words[start + period : start + 2 * period]:
                    return True
    return False


def looks_looped(text: str, tokens: int, duration: float) -> bool:
    """Whether a fitted-window decode looks like a loop and needs the full window.

    Args:
        text: Everything the decode produced, before any filtering.
        tokens: How many tokens that took.
        duration: Audio length in seconds.
    """
    return tokens > MAX_TOKENS_PER_SECOND * duration + TOKEN_SLACK or repeats_phrase(text)


def decode_fitted(
    model: WhisperModel,
    audio: np.ndarray[Any, np.dtype[np.float32]],
    frames: int,
    transcribe_kwargs: dict[str, Any],
) -> tuple[Iterable[Segment], str]:
    """Start a decode of ``audio`` on a window of ``frames`` mel frames.

    Args:
        model: The faster-whisper model.
        audio: 16 kHz mono float audio, shorter than the window.
        frames: Window length from :func:`fit_window_frames`.
        transcribe_kwargs: The keyword arguments ``WhisperModel.transcribe``
            would get (without ``audio``); ``vad_filter`` must be off.

    Returns:
        The lazy segments (each step decodes) and the language.
    """
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    duration = len(audio) / (FRAMES_PER_SECOND * 160)
    features = model.feature_extractor(audio)  # never pass chunk_length: it changes shared state
    content = features.shape[-1] - 1  # as faster-whisper counts content frames
    encoder_output = model.encode(pad_or_trim(features[:, :content], frames))
    language = transcribe_kwargs.get("language")
    if language is None:
        if model.model.is_multilingual:
            language = model.model.detect_language(encoder_output)[0][0][0][2:-2]
        else:
            language = "en"
    # transcribe() is lazy: called only to resolve every decode option with
    # faster-whisper's own defaults; its segment generator is never started.
    # 10 ms of audio is enough for that and spares a second feature extraction.
    options = {**transcribe_kwargs, "language": language, "max_new_tokens": token_budget(duration)}
    _, info = model.transcribe(audio[:160], **options)
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=info.language)
    segments = model.generate_segments(features, tokenizer, info.transcription_options, False, encoder_output)
    return segments, info.language
