"""One blocking recognition: audio preparation, decoding and clean-up.

Everything here runs on the model's worker thread, never on the event loop.
Whisper was trained on 30 s windows of subtitled video, so on silence or
noise it tends to "hear" subtitle boiler-plate ("Thank you.", "you"). Three
guards keep that out of transcripts: a level gate that skips decoding of
near-silent audio, a per-segment no-speech check stricter than
faster-whisper's own, and a list of typical phantom phrases dropped when the
model itself doubts there was speech.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from loguru import logger

from vocalis.audio import AudioFrame, AudioResampler
from vocalis_whisper.window import decode_fitted, fit_window_frames, looks_looped

if TYPE_CHECKING:
    import numpy as np
    from faster_whisper import WhisperModel
    from faster_whisper.transcribe import Segment


SAMPLE_RATE = 16_000

# Phrases Whisper produces from silence, breathing or hum (normalised form).
PHANTOM_PHRASES = frozenset(
    {
        "you",
        "thank you",
        "thank you very much",
        "thanks",
        "thanks for watching",
        "thank you for watching",
        "thanks for listening",
        "thank you for listening",
        "please subscribe",
        "subscribe",
        "bye",
        "bye bye",
        "so",
        "oh",
        "uh",
        "um",
        "hmm",
        "i",
        "the",
        "okay",
        "music",
        "applause",
        "silence",
    }
)


class Cancelled(Exception):
    """The caller gave up on this recognition before it finished."""


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """What one decode needs beyond the audio.

    Attributes:
        language: Language code, or None to detect (multilingual models).
        beam_size: 1 is greedy; more is beam search.
        temperatures: Sampling temperatures to fall back through when a
            decode looks like a loop or is very unlikely.
        initial_prompt: Text that primes vocabulary and style.
        vad_filter: Run faster-whisper's own Silero VAD first.
        no_speech_threshold: Segments whose no-speech probability is above
            this are dropped unless the text is very likely.
        phantom_no_speech: Phantom phrases are dropped when the no-speech
            probability is above this.
        silence_dbfs: Audio whose peak is below this level is not decoded.
        window: ``"full"`` encodes Whisper's fixed 30 s window; ``"fit"`` a
            window fitted to the audio (see :mod:`vocalis_whisper.window`),
            falling back to the full one when the output looks looped.
            ``"fit"`` is ignored with ``vad_filter``.
    """

    language: str | None
    beam_size: int
    temperatures: tuple[float, ...]
    initial_prompt: str | None
    vad_filter: bool
    no_speech_threshold: float
    phantom_no_speech: float
    silence_dbfs: float
    window: Literal["full", "fit"] = "full"


@dataclass(frozen=True, slots=True)
class Transcript:
    """The clean result of one decode."""

    text: str
    confidence: float
    language: str | None
    start_time: float
    end_time: float


def frames_to_float(frames: Sequence[AudioFrame]) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Join frames into 16 kHz mono float32 in [-1, 1].

    Frames of other rates or channel counts are mixed down and resampled;
    the format may even change within the list.
    """
    import numpy as np

    resampler = AudioResampler(SAMPLE_RATE, channels=1)
    chunks: list[bytes] = []
    for frame in frames:
        out = resampler.push(frame)
        if out is not None:
            chunks.append(out.data)
    tail = resampler.flush()
    if tail is not None:
        chunks.append(tail.data)
    pcm = np.frombuffer(b"".join(chunks), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def peak_dbfs(audio: np.ndarray[Any, np.dtype[np.float32]]) -> float:
    """Peak level in dB relative to full scale (-inf for digital silence)."""
    if not len(audio):
        return -math.inf
    peak = float(abs(audio).max())
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def normalise(text: str) -> str:
    """Lower-case words without punctuation, for phrase matching."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def transcribe(
    model: WhisperModel,
    audio: np.ndarray[Any, np.dtype[np.float32]],
    options: DecodeOptions,
    cancel: threading.Event | None = None,
) -> Transcript:
    """Decode 16 kHz mono float audio into one cleaned-up transcript.

    Raises:
        Cancelled: ``cancel`` was set before or between segments.
    """
    duration = len(audio) / SAMPLE_RATE
    empty = Transcript("", 0.0, options.language, 0.0, duration)
    if not len(audio) or peak_dbfs(audio) < options.silence_dbfs:
        return empty
    if cancel is not None and cancel.is_set():
        raise Cancelled
    kwargs: dict[str, Any] = {
        "language": options.language,
        "beam_size": options.beam_size,
        "best_of": max(1, options.beam_size),
        "temperature": list(options.temperatures),
        "initial_prompt": options.initial_prompt,
        "vad_filter": options.vad_filter,
        # Each utterance stands alone; carrying text over would spread errors.
        "condition_on_previous_text": False,
        "without_timestamps": True,
        "no_speech_threshold": options.no_speech_threshold,
    }
    frames = fit_window_frames(duration) if options.window == "fit" and not options.vad_filter else None
    if frames is not None:
        segments, language = decode_fitted(model, audio, frames, kwargs)
        decoded = _collect(segments, cancel)
        text = " ".join(segment.text.strip() for segment in decoded)
        if not looks_looped(text, sum(len(segment.tokens) for segment in decoded), duration):
            return _clean(decoded, language, duration, options)
        logger.debug("short-window decode looks looped ({!r}); decoding on the full window", text)
        if cancel is not None and cancel.is_set():
            raise Cancelled
    segments, info = model.transcribe(audio, **kwargs)
    return _clean(_collect(segments, cancel), info.language, duration, options)


def _collect(segments: Iterable[Segment], cancel: threading.Event | None) -> list[Segment]:
    """Run a lazy decode to the end, checking for cancellation between segments."""
    decoded: list[Segment] = []
    for segment in segments:  # lazy: each step decodes one window
        if cancel is not None and cancel.is_set():
            raise Cancelled
        decoded.append(segment)
    return decoded


def _clean(segments: list[Segment], language: str | None, duration: float, options: DecodeOptions) -> Transcript:
    """Drop phantom segments and join the rest into one transcript."""
    kept: list[tuple[str, float, float]] = []  # text, duration weight, confidence
    start, end = math.inf, 0.0
    for segment in segments:
        text = segment.text.strip()
        if not text or is_phantom(text, segment.no_speech_prob, segment.avg_logprob, options):
            continue
        confidence = math.exp(min(0.0, segment.avg_logprob)) * (1.0 - segment.no_speech_prob)
        weight = max(segment.end - segment.start, 1e-3)
        kept.append((text, weight, confidence))
        start, end = min(start, segment.start), max(end, segment.end)
    if not kept:
        return Transcript("", 0.0, language, 0.0, duration)
    total = sum(weight for _, weight, _ in kept)
    confidence = sum(weight * conf for _, weight, conf in kept) / total
    text = " ".join(text for text, _, _ in kept)
    return Transcript(text, min(1.0, max(0.0, confidence)), language, start, min(end, duration))


def is_phantom(text: str, no_speech: float, avg_logprob: float, options: DecodeOptions) -> bool:
    """Whether a decoded segment is most likely invented from non-speech.

    Args:
        text: The segment's text.
        no_speech: The model's probability that the window holds no speech.
        avg_logprob: Mean log-probability of the segment's tokens.
        options: The thresholds to apply.
    """
    # faster-whisper keeps a segment whose no-speech probability is high when
    # avg_logprob > -1; on silence "You" comes back at -0.96 with 0.95
    # no-speech, so demand a clearly likely text before trusting it.
    if no_speech > options.no_speech_threshold and avg_logprob < -0.5:
        return True
    return normalise(text) in PHANTOM_PHRASES and no_speech > options.phantom_no_speech
