"""Voice-activity-detection contract."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from vocalis.audio import AudioFrame
from vocalis.providers.base import Provider, ProviderKind
from vocalis.providers.streams import ProviderStream


class VADEventType(StrEnum):
    """What a :class:`VADEvent` reports."""

    START_OF_SPEECH = "start_of_speech"
    INFERENCE = "inference"
    END_OF_SPEECH = "end_of_speech"


@dataclass(slots=True)
class VADEvent:
    """A speech boundary (or, optionally, a per-window probability).

    Attributes:
        type: Start, end, or a plain inference result.
        timestamp: Seconds of audio pushed into the stream at the event.
        probability: Speech probability of the latest window.
        speech_duration: Seconds of speech in the current segment.
        silence_duration: Seconds of silence since speech last ended.
    """

    type: VADEventType
    timestamp: float = 0.0
    probability: float = 0.0
    speech_duration: float = 0.0
    silence_duration: float = 0.0


class VADStream(ProviderStream[VADEvent]):
    """Push audio frames; read speech start and end events.

    Implementations should decide inline in :meth:`push_frame` when inference
    is cheap (tens of microseconds), and only send an event on a boundary, so
    a silent session costs nothing but the call.
    """

    speech_duration: float | None = None
    """Seconds of actual speech (trailing silence excluded) in the current
    segment, kept up to date by implementations that can; None if unknown.
    The pipeline uses it so that the VAD's end-of-speech hangover does not
    count towards the minimum interruption duration."""

    def push_frame(self, frame: AudioFrame) -> None:
        """Add audio at the provider's ``sample_rate`` (the pipeline resamples)."""
        raise NotImplementedError


class VAD(Provider):
    """Base class of VAD providers.

    Attributes:
        sample_rate: The input rate the provider wants.
    """

    kind: ClassVar[ProviderKind] = ProviderKind.VAD
    sample_rate: ClassVar[int] = 16_000

    def stream(self) -> VADStream:
        """Open a per-session detection stream (its state is not shared)."""
        raise NotImplementedError
