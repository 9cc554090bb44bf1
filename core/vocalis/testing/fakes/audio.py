"""Fake audio providers: an energy VAD, a scripted STT and a tone-speaking TTS.

Their latencies are waits on the event loop's clock, so under
:func:`vocalis.testing.run_virtual` they cost no wall time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

from vocalis.audio import AudioFrame
from vocalis.providers.stt import STT, SpeechEvent, SpeechEventType, STTStream
from vocalis.providers.tts import TTS
from vocalis.providers.vad import VAD, VADEvent, VADEventType, VADStream
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis.testing.fakes.signals import is_speech, tone
from vocalis.text import speakable


# -- VAD ---------------------------------------------------------------------
class FakeVAD(VAD):
    """Energy VAD: loud frames are speech, silent frames are not.

    Settings ``min_speech`` and ``min_silence`` (seconds) debounce the
    boundaries like a real VAD does.
    """

    name: ClassVar[str] = "fake"

    class Settings(ProviderSettings):
        model_config = provider_settings_config("vad", "fake")
        min_speech: float = 0.06
        min_silence: float = 0.3
        threshold: int = 500

    def stream(self) -> VADStream:
        return _FakeVADStream(self)


class _FakeVADStream(VADStream):
    def __init__(self, vad: FakeVAD) -> None:
        super().__init__(vad.label)
        self._settings = vad.settings
        self._speaking = False
        self._run = 0.0  # seconds of the opposite state so far
        self._speech = 0.0
        self._time = 0.0
        self.speech_duration = 0.0

    def push_frame(self, frame: AudioFrame) -> None:
        if self.input_ended or self._finished:
            return  # like a real VAD: audio after end_input() or aclose() is ignored
        settings = self._settings
        self._time += frame.duration
        loud = is_speech(frame, settings.threshold)  # type: ignore[attr-defined]
        if loud != self._speaking:
            self._run += frame.duration
            limit = settings.min_speech if loud else settings.min_silence  # type: ignore[attr-defined]
            if self._run + 1e-9 >= limit:
                run, self._run = self._run, 0.0
                self._speaking = loud
                kind = VADEventType.START_OF_SPEECH if loud else VADEventType.END_OF_SPEECH
                silence = 0.0 if loud else run
                self.send(VADEvent(kind, self._time, 1.0 if loud else 0.0, self._speech, silence))
                self._speech = run if loud else 0.0
        else:
            self._run = 0.0
        if self._speaking and loud:
            self._speech += frame.duration
        self.speech_duration = self._speech if self._speaking else 0.0


# -- STT ---------------------------------------------------------------------
class FakeSTT(STT):
    """Scripted recogniser: the n-th speech segment is heard as ``transcripts[n]``.

    Streaming by default: interim results reveal the words as speech goes on
    (one per ``word_seconds``), and the final comes ``final_delay`` after the
    pipeline flushes the segment. With ``streaming=False`` only
    :meth:`recognize` works (the pipeline then segments by VAD); each
    recognition of audio with speech takes the next transcript, so set
    ``EOUConfig(speculative_stt=0)`` when the user pauses mid-utterance (an
    early recognition that the user's next words make stale would use one).

    Args:
        transcripts: Texts for consecutive segments ("" for noise).
        final_delay: Seconds from flush to the final result.
        word_seconds: Seconds of speech per revealed interim word (0: none).
        streaming: Whether :meth:`stream` is available.
    """

    name: ClassVar[str] = "fake"
    streaming: ClassVar[bool] = True

    class Settings(ProviderSettings):
        model_config = provider_settings_config("stt", "fake")
        transcripts: list[str] = []
        final_delay: float = 0.1

    def __init__(
        self,
        transcripts: Sequence[str] = (),
        *,
        final_delay: float | None = None,
        word_seconds: float = 0.0,
        streaming: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.transcripts = list(transcripts) or list(self.settings.transcripts)  # type: ignore[attr-defined]
        self.final_delay = self.settings.final_delay if final_delay is None else final_delay  # type: ignore[attr-defined]
        self.word_seconds = word_seconds
        self.streaming = streaming  # type: ignore[misc]
        self.recognized: list[str] = []

    def next_transcript(self) -> str:
        text = self.transcripts.pop(0) if self.transcripts else ""
        self.recognized.append(text)
        return text

    async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        await asyncio.sleep(self.final_delay)
        if not any(is_speech(frame) for frame in frames):
            return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, "", language=language)
        return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, self.next_transcript(), language=language)

    async def recognize_interim(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        """The first half of the coming transcript, without consuming it."""
        await asyncio.sleep(self.final_delay)
        words = self.transcripts[0].split() if self.transcripts else []
        text = " ".join(words[: len(words) // 2])
        return SpeechEvent(SpeechEventType.INTERIM_TRANSCRIPT, text, language=language)

    def stream(self, *, language: str | None = None) -> STTStream:
        if not self.streaming:
            raise NotImplementedError(f"{self.label} is configured as non-streaming")
        return _FakeSTTStream(self, language)


class _FakeSTTStream(STTStream):
    def __init__(self, stt: FakeSTT, language: str | None) -> None:
        super().__init__(stt.label)
        self._stt = stt
        self._language = language
        self._speech = 0.0
        self._revealed = 0
        self._pending: set[asyncio.Task[None]] = set()

    def end_input(self) -> None:
        self.flush()
        self._input_ended = True
        if not self._pending:
            self._finish()

    def push_frame(self, frame: AudioFrame) -> None:
        stt = self._stt
        if self.input_ended or self._closed or not is_speech(frame):
            return
        self._speech += frame.duration
        if stt.word_seconds and stt.transcripts:
            words = stt.transcripts[0].split()
            shown = min(len(words), int(self._speech / stt.word_seconds))
            if shown > self._revealed:
                self._revealed = shown
                self.send(
                    SpeechEvent(SpeechEventType.INTERIM_TRANSCRIPT, " ".join(words[:shown]), language=self._language)
                )

    def flush(self) -> None:
        if self._speech == 0.0 or self._closed:
            return
        self._speech = 0.0
        self._revealed = 0
        text = self._stt.next_transcript()
        task = asyncio.get_running_loop().create_task(self._final(text))
        self._pending.add(task)

    async def _final(self, text: str) -> None:
        try:
            await asyncio.sleep(self._stt.final_delay)
            self.send(SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, text, language=self._language))
        finally:
            self._pending.discard(asyncio.current_task())
            if self.input_ended and not self._pending:
                self._finish()

    async def aclose(self) -> None:
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        await super().aclose()


# -- TTS ---------------------------------------------------------------------
class FakeTTS(TTS):
    """Speaks any text as a tone: ``seconds_per_char`` of audio per character.

    Args:
        ttfb: Seconds before the first frame of each synthesis.
        seconds_per_char: Audio length per character of text.
        frame_seconds: Size of the frames produced.
        fail_on: Raise when asked to speak text containing this string.
    """

    name: ClassVar[str] = "fake"
    sample_rate: ClassVar[int] = 24_000

    class Settings(ProviderSettings):
        model_config = provider_settings_config("tts", "fake")

    def __init__(
        self,
        *,
        ttfb: float = 0.0,
        seconds_per_char: float = 0.05,
        frame_seconds: float = 0.02,
        fail_on: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ttfb = ttfb
        self.seconds_per_char = seconds_per_char
        self.frame_seconds = frame_seconds
        self.fail_on = fail_on
        self.spoken: list[str] = []
        self._frame = tone(frame_seconds, self.sample_rate, frequency=440.0)

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        if self.fail_on is not None and self.fail_on in text:
            raise self.error(f"cannot speak {text!r}")
        if not speakable(text):
            return
        self.spoken.append(text)
        if self.ttfb:
            await asyncio.sleep(self.ttfb)
        frames = max(1, round(len(text) * self.seconds_per_char / self.frame_seconds))
        for _ in range(frames):
            yield self._frame
