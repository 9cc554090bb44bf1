"""Adapters that give non-streaming providers a streaming face.

- :class:`SentenceTTSStream` turns a one-shot TTS into a streaming one: text
  is chunked into sentences as it arrives and each is synthesised in order.
- :class:`SegmentedSTTStream` turns a one-shot STT into a streaming one,
  segmented by the pipeline's VAD: audio is buffered while the user speaks,
  interim results come from periodic partial recognitions, and the final
  result from the whole segment when the VAD says speech ended.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from vocalis.audio import AudioFrame
from vocalis.providers.base import ProviderError
from vocalis.providers.guards import check_speech_event
from vocalis.providers.stt import SpeechEvent, SpeechEventType, STTStream
from vocalis.providers.tts import SentenceTTSStream

__all__ = ["SegmentedSTTStream", "SentenceTTSStream"]  # the TTS adapter lives in providers.tts

if TYPE_CHECKING:
    from vocalis.providers.stt import STT


class SegmentedSTTStream(STTStream):
    """Streaming recognition over :meth:`STT.recognize`, segmented by VAD.

    The pipeline calls :meth:`start_segment` on VAD start of speech and
    :meth:`flush` on VAD end of speech.

    Args:
        stt: The one-shot recogniser.
        language: Passed to ``recognize``.
        interim_interval: Seconds of new speech between interim recognitions
            (0 disables interims).
        preroll: Seconds of audio before the VAD start to include, since VADs
            trigger a little after speech begins.
        max_segment: Seconds of speech one recognition gets. Longer speech
            (a monologue, or noise the VAD takes for speech) is recognised in
            pieces of this length as it goes; each piece's final is part of
            the same user turn. ``None``: no limit.
        max_backlog: Seconds of speech that may wait for recognition. Past
            it the stream fails with a recoverable error (the pipeline
            reports it and listens on with a fresh stream) instead of
            queueing without end. ``None`` (the default): no limit, since a
            file fed faster than real time queues legitimately; in a live
            session a recogniser that falls behind is replaced anyway once
            a final is overdue (``ProviderTimeouts.stt_final``).
    """

    def __init__(
        self,
        stt: STT,
        *,
        language: str | None = None,
        interim_interval: float = 1.0,
        preroll: float = 0.3,
        max_segment: float | None = 60.0,
        max_backlog: float | None = None,
    ) -> None:
        super().__init__(stt.label)
        self._stt = stt
        self._language = language
        self._interim_interval = interim_interval
        self._preroll = preroll
        self._history: deque[AudioFrame] = deque()
        self._history_seconds = 0.0
        self._segment: list[AudioFrame] | None = None
        self._segment_seconds = 0.0
        self._max_segment = max_segment
        self._max_backlog = max_backlog
        self._since_interim = 0.0
        # (audio, "final" | "interim" | "speculative", speculation, the segment an
        # interim was taken from: it is emitted only while that segment is open).
        self._jobs: deque[tuple[list[AudioFrame], str, _Speculation | None, object]] = deque()
        self._speculation: _Speculation | None = None
        self._wake = asyncio.Event()
        self._interim_busy = False
        self.start_task(self._run())

    def start_segment(self) -> None:
        """Speech started: begin a segment with the pre-roll audio."""
        self._segment = list(self._history)
        self._segment_seconds = self._history_seconds
        self._since_interim = 0.0

    def push_frame(self, frame: AudioFrame) -> None:
        if self._segment is not None:
            self._segment.append(frame)
            self._segment_seconds += frame.duration
            self._since_interim += frame.duration
            if self._max_segment is not None and self._segment_seconds >= self._max_segment:
                self._split_segment()
            if self._interim_interval and self._since_interim >= self._interim_interval and not self._interim_busy:
                self._since_interim = 0.0
                self._queue_job(list(self._segment), final=False)
        self._history.append(frame)
        self._history_seconds += frame.duration
        while self._history and self._history_seconds - self._history[0].duration >= self._preroll:
            self._history_seconds -= self._history.popleft().duration

    def _split_segment(self) -> None:
        """The segment reached ``max_segment``: recognise it now, go on with a new one."""
        segment = self._segment or []
        self._segment, self._segment_seconds, self._since_interim = [], 0.0, 0.0
        self._speculation = None  # it was about the audio just queued
        self._queue_job(segment, final=True)

    def speculate(self) -> None:
        """The user seems to have stopped: start the final recognition now.

        The VAD reports the end of speech only after its silence hang-over;
        recognising during that wait takes the recogniser's latency off the
        turn. :meth:`flush` with ``use_speculation=True`` then uses this
        result; new speech makes the pipeline call :meth:`drop_speculation`.
        """
        if self._segment is None or self._speculation is not None:
            return
        self._speculation = _Speculation()
        self._jobs.append((list(self._segment), "speculative", self._speculation, None))
        self._wake.set()

    def drop_speculation(self) -> None:
        """Speech went on after :meth:`speculate`: its result is stale."""
        self._speculation = None

    @property
    def speculating(self) -> bool:
        """Whether a speculative final is pending or ready."""
        return self._speculation is not None

    def flush(self, *, use_speculation: bool = False) -> None:
        if self._segment is None:
            return
        segment, self._segment = self._segment, None
        speculation, self._speculation = self._speculation, None
        if use_speculation and speculation is not None:
            if speculation.result is not None:
                self.send(speculation.result)
            else:
                speculation.wanted = True
            return
        self._queue_job(segment, final=True)

    def _queue_job(self, frames: list[AudioFrame], *, final: bool) -> None:
        if not final:
            self._interim_busy = True
        self._jobs.append((frames, "final" if final else "interim", None, None if final else self._segment))
        self._wake.set()
        if final and self._max_backlog is not None:
            waiting = sum(f.duration for job, kind, _, _ in self._jobs if kind == "final" for f in job)
            if waiting > self._max_backlog:
                self._jobs.clear()
                self.fail(
                    ProviderError(
                        f"falling behind: {waiting:.0f} s of speech wait for recognition "
                        f"(limit {self._max_backlog:g} s); the recogniser is slower than real time",
                        provider=self.label,
                    )
                )

    def _on_end_input(self) -> None:
        self.flush()
        self._wake.set()

    async def _run(self) -> None:
        while True:
            while not self._jobs:
                if self.input_ended:
                    return
                self._wake.clear()
                await self._wake.wait()
            frames, kind, speculation, segment = self._jobs.popleft()
            if speculation is not None:
                await self._speculate(frames, speculation)
                continue
            final = kind == "final"
            if not final and (self._segment is not segment or any(k == "final" for _, k, _, _ in self._jobs)):
                # Its segment has ended (its final supersedes it) or a final is
                # queued ahead of newer speech: a stale interim, never emitted.
                self._interim_busy = False
                continue
            if final:
                result = check_speech_event(self.label, await self._stt.recognize(frames, language=self._language))
            else:
                result = check_speech_event(
                    self.label, await self._stt.recognize_interim(frames, language=self._language)
                )
                if self._segment is not segment:
                    # The segment ended while this ran: its final supersedes it, and a
                    # late interim would look like new words from the user.
                    self._interim_busy = False
                    continue
            if final:
                self.send(
                    SpeechEvent(
                        SpeechEventType.FINAL_TRANSCRIPT,
                        text=result.text.strip(),
                        confidence=result.confidence,
                        language=result.language,
                    )
                )
            else:
                self._interim_busy = False
                if result.text.strip():
                    self.send(
                        SpeechEvent(
                            SpeechEventType.INTERIM_TRANSCRIPT,
                            text=result.text.strip(),
                            confidence=result.confidence,
                            language=result.language,
                        )
                    )

    async def _speculate(self, frames: list[AudioFrame], speculation: _Speculation) -> None:
        if speculation is not self._speculation and not speculation.wanted:
            return  # dropped before it started
        result = check_speech_event(self.label, await self._stt.recognize(frames, language=self._language))
        event = SpeechEvent(
            SpeechEventType.FINAL_TRANSCRIPT,
            text=result.text.strip(),
            confidence=result.confidence,
            language=result.language,
        )
        speculation.result = event
        if speculation.wanted:
            self.send(event)


class _Speculation:
    """A final recognition started before the VAD's end of speech."""

    __slots__ = ("result", "wanted")

    def __init__(self) -> None:
        self.result: SpeechEvent | None = None
        self.wanted = False
