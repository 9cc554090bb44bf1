"""Speech-to-text contract: streaming recognition and one-shot recognition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar

from vocalis.audio import AudioFrame
from vocalis.providers.base import Provider, ProviderKind
from vocalis.providers.streams import ProviderStream


class SpeechEventType(StrEnum):
    """What a :class:`SpeechEvent` reports."""

    START_OF_SPEECH = "start_of_speech"
    INTERIM_TRANSCRIPT = "interim_transcript"
    FINAL_TRANSCRIPT = "final_transcript"
    END_OF_SPEECH = "end_of_speech"


@dataclass(slots=True)
class SpeechEvent:
    """One recognition result.

    Attributes:
        type: Interim (may still change) or final (will not change), or a
            speech boundary reported by the recogniser itself.
        text: The transcript (empty for boundaries).
        confidence: 0..1, when the recogniser reports one.
        language: Detected or configured language code.
        start_time: Seconds into the stream where the text starts.
        end_time: Seconds into the stream where the text ends.
    """

    type: SpeechEventType
    text: str = ""
    confidence: float = 1.0
    language: str | None = None
    start_time: float = 0.0
    end_time: float = 0.0
    alternatives: list[str] = field(default_factory=list)


class STTStream(ProviderStream[SpeechEvent]):
    """A recognition stream: push audio, read :class:`SpeechEvent` objects."""

    def push_frame(self, frame: AudioFrame) -> None:
        """Add audio at the provider's ``sample_rate`` (the pipeline resamples)."""
        raise NotImplementedError

    def flush(self) -> None:
        """The current speech segment ended (from VAD); finalise what is pending."""


class STT(Provider):
    """Base class of STT providers.

    Attributes:
        sample_rate: The input rate the provider wants; the pipeline
            resamples to it.
        streaming: True when :meth:`stream` recognises incrementally. A
            non-streaming provider only implements :meth:`recognize`; the
            pipeline then segments speech with its VAD
            (:class:`vocalis.providers.adapters.SegmentedSTTStream`).
    """

    kind: ClassVar[ProviderKind] = ProviderKind.STT
    sample_rate: ClassVar[int] = 16_000
    streaming: ClassVar[bool] = False

    async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        """Transcribe one complete utterance.

        Returns:
            A ``FINAL_TRANSCRIPT`` event (empty text when nothing was said).
        """
        raise NotImplementedError(f"{self.label} does not implement recognize()")

    async def recognize_interim(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        """Transcribe an utterance that is still going on (for interim results).

        Defaults to :meth:`recognize`; override to decode faster (e.g. greedy
        instead of beam search) since interims are replaced by the final.
        """
        return await self.recognize(frames, language=language)

    def stream(self, *, language: str | None = None) -> STTStream:
        """Open a streaming recognition session (streaming providers only)."""
        raise NotImplementedError(f"{self.label} does not stream; use recognize()")
