"""Turn-taking configuration: when the user's turn ends and when they interrupt."""

from __future__ import annotations

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
            transcript before deciding without one.
    """

    mode: EOUMode = EOUMode.ADAPTIVE
    min_delay: float = 0.5
    max_delay: float = 0.8
    threshold: float = 0.5
    stt_timeout: float = 2.0

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
    """

    mode: InterruptMode = InterruptMode.HYBRID
    min_duration: float = 0.5
    min_words: int = 2
    enabled: bool = True
