"""Text-to-speech contract: one-shot synthesis and streaming from a text stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import ClassVar

from vocalis.audio import AudioFrame
from vocalis.providers.base import Provider, ProviderKind
from vocalis.providers.streams import ProviderStream


@dataclass(slots=True)
class SynthesizedAudio:
    """A frame of synthesised speech.

    Attributes:
        frame: The audio.
        text: The text segment this audio speaks (set on the first frame of
            each segment, empty on the rest), for transcripts and truncation.
        segment_end: True on the last frame of a segment. The session then
            knows the segment's audio is complete; without it, a segment
            cut short (interruption, failure) is measured against its
            expected length before its words are kept in proportion.
    """

    frame: AudioFrame
    text: str = ""
    segment_end: bool = False


class TTSStream(ProviderStream[SynthesizedAudio]):
    """Push text as it is generated; read audio as soon as it exists."""

    def push_text(self, text: str) -> None:
        """Add text (any size: tokens or whole sentences)."""
        raise NotImplementedError

    def flush(self) -> None:
        """Synthesise what is pending now, without waiting for more text."""


class TTS(Provider):
    """Base class of TTS providers.

    A provider implements :meth:`synthesize`; the default :meth:`stream`
    chunks incoming text into sentences and synthesises them in order
    (:class:`vocalis.providers.adapters.SentenceTTSStream`). Providers that accept
    incremental text natively override :meth:`stream`.

    Attributes:
        sample_rate: Rate of the audio produced.
        channels: Channels of the audio produced.
    """

    kind: ClassVar[ProviderKind] = ProviderKind.TTS
    sample_rate: ClassVar[int] = 24_000
    channels: ClassVar[int] = 1

    def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        """Speak one piece of text; implement as an async generator of frames."""
        raise NotImplementedError

    def stream(self) -> TTSStream:
        """Open a streaming synthesis session."""
        from vocalis.providers.adapters import SentenceTTSStream

        return SentenceTTSStream(self)
