"""Turn-taking configuration: when the user's turn ends, when they interrupt,
and how long a turn waits on each provider."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class EOUMode(StrEnum):
    """How the end-of-turn wait depends on the turn detector's probability."""

    FIXED = "fixed"
    """Wait ``min_delay`` when the probability clears ``threshold``, else ``max_delay``."""
    ADAPTIVE = "adaptive"
    """Interpolate: probability 1 waits ``min_delay``, probability 0 waits ``max_delay``."""


@dataclass(slots=True)
class EOUConfig:
    """When a pause ends the user's turn.

    Attributes:
        mode: Fixed or adaptive wait (see :class:`EOUMode`).
        min_delay: Seconds of silence after a confident end of turn. 0.5 s
            matches how quickly people answer each other without cutting
            off a speaker who breathes between sentences.
        max_delay: Seconds of silence when the turn detector thinks the user
            is not done (a phone number read in groups). 0.8 s is a
            conversational compromise; raise it for dictation-like use.
        threshold: Probability above which the turn counts as complete.
        stt_timeout: Seconds to wait after speech ends for a final
            transcript before deciding with the interim one (without one,
            the turn waits on; :attr:`ProviderTimeouts.stt_final` bounds
            that wait).
        stt_watchdog: Seconds without any new transcript, while the VAD
            still hears "speech" (background noise), after which the turn is
            decided anyway. 0 disables it.
        preemptive_generation: Start the LLM as soon as the user pauses with
            a transcript, before the end-of-turn wait is over; the result is
            used when the committed transcript is the same, else dropped. It
            saves the LLM's time to first token at the cost of some wasted
            requests, so it is off by default.
        speculative_stt: For a non-streaming STT: seconds of pause (the VAD
            hears no speech, before its end-of-speech hang-over is over)
            after which the final recognition starts early; wasted only if
            the user goes on. 0 disables it.
    """

    mode: EOUMode = EOUMode.ADAPTIVE
    min_delay: float = 0.5
    max_delay: float = 0.8
    threshold: float = 0.5
    stt_timeout: float = 2.0
    stt_watchdog: float = 3.0
    preemptive_generation: bool = False
    speculative_stt: float = 0.15

    def __post_init__(self) -> None:
        if not 0 <= self.min_delay <= self.max_delay:
            raise ValueError("EOUConfig needs 0 <= min_delay <= max_delay")
        if not 0 <= self.threshold <= 1:
            raise ValueError("EOUConfig.threshold must be within 0..1")

    def delay_for(self, probability: float | None) -> float:
        """Seconds to wait given the detector's probability (None: no detector)."""
        if probability is None:
            return self.min_delay
        probability = min(1.0, max(0.0, probability))
        if self.mode is EOUMode.FIXED:
            return self.min_delay if probability >= self.threshold else self.max_delay
        return self.max_delay - probability * (self.max_delay - self.min_delay)


@dataclass(slots=True)
class ProviderTimeouts:
    """How long a turn waits on each provider before it gives up on it.

    A provider that exceeds its limit is reported as an ``error`` event that
    names it (``"llm:openai: no output within 15 s"``), and the turn ends:
    with what was already said, or with the session's ``error_message``.
    Defaults are generous: real networked providers and the offline stack on
    a 2-core machine stay well inside them, so only a stuck provider hits
    them. Set a limit to ``None`` to wait forever.

    Attributes:
        llm_first_chunk: Seconds from the request to the LLM's first chunk
            (a long prompt on a local model, or a busy API, needs several).
        llm_next_chunk: Seconds between two chunks; a local model writing a
            long tool call yields nothing until the call is complete.
        tts_first_audio: Seconds for the TTS's first audio once all the
            text of the reply was given to it.
        tts_next_audio: Seconds between two pieces of audio once all the
            text was given (a sentence-by-sentence TTS pauses between
            sentences). While the LLM still writes, the TTS may be waiting
            for text, so no limit applies then.
        stt_final: Seconds, on top of the utterance's own length, for the
            final transcript after the user stopped speaking. Past it the
            recogniser is taken as stuck: its request is dropped and a fresh
            stream listens on. (``EOUConfig.stt_timeout`` is the much
            shorter wait after which the turn goes on with the interim.)
        eou_predict: Seconds for one turn-detector prediction; past it the
            turn is decided without the detector.
        vad_stall: Seconds of audio during which a VAD that says the user
            is speaking may report no change at all (its speech time stands
            still and no end of speech comes); past it the VAD is taken as
            stuck and restarted.
        audio_output: Seconds the transport may take to accept one frame of
            agent audio (a transport that applies backpressure blocks).
        realtime_response: Seconds a realtime model may take to start a
            response (after a request, or after the user stopped speaking).
        realtime_next_event: Seconds between two pieces of a realtime
            response (audio, transcript) before the connection is taken as
            stuck and reopened.
    """

    llm_first_chunk: float | None = 15.0
    llm_next_chunk: float | None = 15.0
    tts_first_audio: float | None = 10.0
    tts_next_audio: float | None = 10.0
    stt_final: float | None = 10.0
    eou_predict: float | None = 3.0
    vad_stall: float | None = 5.0
    audio_output: float | None = 5.0
    realtime_response: float | None = 30.0
    realtime_next_event: float | None = 15.0

    def __post_init__(self) -> None:
        for name in self.__slots__:
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"ProviderTimeouts.{name} must be a positive number of seconds or None")


DEFAULT_BACKCHANNELS = frozenset(
    """yeah yes yep yup ya uh huh uh-huh mhm mm hmm mm-hmm mmhmm hmm ok okay right
    alright sure cool nice great wow oh ah aha i see got it gotcha makes sense
    true exactly totally indeed of course for sure sounds good good perfect fine
    interesting really""".split()
    + [
        "uh huh",
        "mm hmm",
        "i see",
        "got it",
        "makes sense",
        "of course",
        "for sure",
        "sounds good",
        "all right",
        "oh okay",
        "oh ok",
        "that's right",
        "i know",
    ]
)
"""Short listener responses that never interrupt the agent (English)."""

DEFAULT_INTERRUPT_PHRASES = frozenset(
    [
        "stop",
        "wait",
        "hold on",
        "hang on",
        "one moment",
        "one second",
        "excuse me",
        "cancel",
        "shut up",
        "be quiet",
        "pause",
        "no no",
        "that's wrong",
    ]
)
"""Phrases that interrupt at once, even as a single word."""


class InterruptMode(StrEnum):
    """What evidence of user speech interrupts the agent."""

    VAD = "vad"
    """Voice activity alone, lasting ``min_duration``."""
    STT = "stt"
    """Transcribed words alone, at least ``min_words``."""
    HYBRID = "hybrid"
    """Whichever comes first."""


@dataclass(slots=True)
class InterruptConfig:
    """When the user's speech cuts the agent off.

    Attributes:
        mode: Which evidence counts (see :class:`InterruptMode`).
        min_duration: Seconds of continuous user speech before an
            interruption (0.5 s ignores coughs and clicks).
        min_words: Transcribed words before an interruption (2 ignores most
            one-word backchannels even before the phrase list is checked).
        enabled: False makes every utterance non-interruptible.
        backchannels: Phrases ("yeah", "uh-huh") that never interrupt and,
            said while the agent speaks, are not taken as a turn.
        interrupt_phrases: Phrases ("stop", "wait") that interrupt at once.
        resume_false_interruption: In hybrid mode, sound that lasts
            ``min_duration`` first *pauses* the agent; if no words follow, or
            only a backchannel, the agent resumes where it stopped.
        false_interruption_timeout: Seconds after the user's sound ends
            without words before a paused agent resumes.
    """

    mode: InterruptMode = InterruptMode.HYBRID
    min_duration: float = 0.5
    min_words: int = 2
    enabled: bool = True
    backchannels: frozenset[str] = DEFAULT_BACKCHANNELS
    interrupt_phrases: frozenset[str] = DEFAULT_INTERRUPT_PHRASES
    resume_false_interruption: bool = True
    false_interruption_timeout: float = 1.0

    def __post_init__(self) -> None:
        if self.min_duration < 0 or self.min_words < 0 or self.false_interruption_timeout < 0:
            raise ValueError("InterruptConfig durations and counts must not be negative")
        self.backchannels = frozenset(normalize(p) for p in self.backchannels)
        self.interrupt_phrases = frozenset(normalize(p) for p in self.interrupt_phrases)

    def is_backchannel(self, text: str) -> bool:
        """Whether ``text`` is only backchannel phrases ("yeah", "uh-huh okay")."""
        words = normalize(text).split()
        return bool(words) and _covered(words, self.backchannels)

    def has_interrupt_phrase(self, text: str) -> bool:
        """Whether ``text`` contains a phrase that always interrupts ("stop")."""
        padded = f" {normalize(text)} "
        return any(f" {phrase} " in padded for phrase in self.interrupt_phrases)


def normalize(text: str) -> str:
    """Lower-case words without punctuation ("Uh-huh, OK!" → "uh huh ok")."""
    return " ".join(re.sub(r"[^\w']+", " ", text.lower()).split())


def _covered(words: list[str], phrases: frozenset[str]) -> bool:
    """Whether ``words`` split entirely into phrases from ``phrases``."""
    reachable = [True] + [False] * len(words)
    for end in range(1, len(words) + 1):
        for size in range(1, min(4, end) + 1):
            if reachable[end - size] and " ".join(words[end - size : end]) in phrases:
                reachable[end] = True
                break
    return reachable[-1]
