"""Text-to-speech contract: one-shot synthesis and streaming from a text stream."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import ClassVar

from vocalis.audio import AudioFrame
from vocalis.providers.base import Provider, ProviderKind
from vocalis.providers.streams import ProviderStream
from vocalis.text import SentenceChunker, speakable


@dataclass(frozen=True, slots=True)
class WordTiming:
    """When a word is heard within its segment's audio (from a TTS's alignment).

    Attributes:
        word: The word as the TTS spoke it.
        start: Seconds from the segment's first audio to the word's start.
        end: Seconds from the segment's first audio to the word's end.
    """

    word: str
    start: float
    end: float


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
        words: Word timings of the current segment that the TTS reported
            (alignment, timestamps), on any frame of it, in order. With
            them an interrupted segment keeps exactly the words that played
            instead of a share in proportion to its audio.
    """

    frame: AudioFrame
    text: str = ""
    segment_end: bool = False
    words: tuple[WordTiming, ...] = ()


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
    (:class:`SentenceTTSStream`). Providers that accept
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
        return SentenceTTSStream(self)


class SentenceTTSStream(TTSStream):
    """Streaming synthesis over :meth:`TTS.synthesize`, one sentence at a time.

    Args:
        tts: The one-shot synthesiser.
        chunker: How text is cut into sentences.
        max_pending: Frames made but not read yet at which synthesis pauses
            until the reader catches up (the session's audio output reads
            at playout pace once it holds its ``max_agent_audio_ahead``).
    """

    def __init__(self, tts: TTS, *, chunker: SentenceChunker | None = None, max_pending: int = 250) -> None:
        super().__init__(tts.label)
        self._tts = tts
        self._chunker = chunker or SentenceChunker()
        self._max_pending = max_pending
        self._pending: deque[str] = deque()
        self._wake = asyncio.Event()
        self.start_task(self._run())

    def push_text(self, text: str) -> None:
        if self.input_ended:
            raise RuntimeError("push_text() after end_input()")
        self._pending.extend(self._chunker.push(text))
        if self._pending:
            self._wake.set()

    def flush(self) -> None:
        self._pending.extend(self._chunker.flush())
        self._wake.set()

    def _on_end_input(self) -> None:
        self.flush()

    async def _run(self) -> None:
        while True:
            while not self._pending:
                if self.input_ended:
                    return
                self._wake.clear()
                await self._wake.wait()
            sentence = self._pending.popleft()
            if not speakable(sentence):
                continue
            first = True
            last: AudioFrame | None = None
            async for frame in self._tts.synthesize(sentence):
                if last is not None:
                    await self.wait_for_room(self._max_pending)
                    self.send(SynthesizedAudio(last, sentence if first else ""))
                    first = False
                last = frame
            if last is not None:
                await self.wait_for_room(self._max_pending)
                self.send(SynthesizedAudio(last, sentence if first else "", segment_end=True))
