"""Keeping the cascading pipeline's ears open: its VAD and STT streams.

A stream that fails, closes early or yields garbage is reported (labelled
with its provider) and replaced by a fresh one, at once the first time and
backing off (to 5 s) if it keeps failing. A provider that refuses for good
(a non-recoverable error: a bad key) is retried much less often, backing
off to once a minute, so that a fixed key is still picked up without a
refusal every few seconds for the rest of the session. A stuck one is replaced too: a VAD whose
speech time stands still while it says the user speaks
(``ProviderTimeouts.vad_stall``), an STT that owes a final transcript for
too long (``ProviderTimeouts.stt_final``, timed by the turn controller).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from vocalis.providers.adapters import SegmentedSTTStream
from vocalis.providers.base import ProviderError, as_provider_error
from vocalis.providers.guards import Restarts, check_speech_event, check_vad_event
from vocalis.providers.stt import SpeechEventType, STTStream
from vocalis.providers.vad import VADEventType, VADStream

if TYPE_CHECKING:
    from vocalis.pipeline.config import ProviderTimeouts
    from vocalis.pipeline.ports import SessionPort
    from vocalis.pipeline.turn_taking import TurnController
    from vocalis.providers.stt import STT
    from vocalis.providers.vad import VAD


REFUSED_CAP = 60.0
"""Seconds between reopenings, at most, of a stream whose provider refuses for good."""


class Pacing:
    """When to reopen a failed stream: as :class:`Restarts` does, but a
    non-recoverable failure backs off exponentially from 1 s to :data:`REFUSED_CAP`."""

    def __init__(self) -> None:
        self._restarts = Restarts()
        self._refused = 0

    def succeeded(self) -> None:
        """The stream delivered something: the next failure restarts at once."""
        self._restarts.succeeded()
        self._refused = 0

    async def pause(self, error: ProviderError) -> None:
        """Wait before reopening after ``error``."""
        if error.recoverable:
            await self._restarts.pause()
            return
        self._refused += 1
        await asyncio.sleep(min(REFUSED_CAP, 2.0 ** (self._refused - 1)))


class InputStreams:
    """The part of :class:`~vocalis.pipeline.cascading.CascadingPipeline` that
    reads, watches and reopens its VAD and STT streams."""

    session: SessionPort | None
    stt: STT
    vad: VAD | None
    turns: TurnController | None
    timeouts: ProviderTimeouts
    _tasks: list[asyncio.Task[Any]]
    _vad_stream: VADStream | None
    _stt_stream: STTStream | None

    def _init_input_streams(self) -> None:
        self._vad_reader: asyncio.Task[None] | None = None
        self._stt_reader: asyncio.Task[None] | None = None
        self._vad_in_speech = False
        self._vad_seen: float | None = None  # the VAD's speech time when it last changed
        self._vad_still = 0.0  # seconds of audio since then

    def _open_stt_stream(self) -> STTStream:
        raise NotImplementedError

    def _on_speech_start(self) -> None:
        raise NotImplementedError

    def _on_speech_end(self, silence: float = 0.0) -> None:
        raise NotImplementedError

    async def _read_vad(self, stream: VADStream) -> None:
        """Read VAD events; a failed, garbled or closed stream is reported and reopened."""
        assert self.session is not None and self.vad is not None
        session, label, restarts = self.session, self.vad.label, Pacing()
        while True:
            try:
                async for item in stream:
                    event = check_vad_event(label, item)
                    restarts.succeeded()
                    if event.type is VADEventType.START_OF_SPEECH:
                        self._vad_in_speech, self._vad_seen, self._vad_still = True, None, 0.0
                        self._on_speech_start()
                    elif event.type is VADEventType.END_OF_SPEECH:
                        self._vad_in_speech = False
                        self._on_speech_end(event.silence_duration)
                if stream.input_ended or session.closed:
                    return
                raise ProviderError("stream ended early: it closed while audio was still coming", provider=label)
            except Exception as exc:
                error = as_provider_error(label, exc)
                session.report_error(label, error)
            if session.closed:
                return
            stream = self._replace_vad_stream(stream)
            await restarts.pause(error)

    def _replace_vad_stream(self, old: VADStream) -> VADStream:
        """A fresh VAD stream; speech the old one had begun ends here."""
        assert self.vad is not None
        self._background(old.aclose())
        stream = self._vad_stream = self.vad.stream()
        if self._vad_in_speech:
            self._vad_in_speech = False
            self._on_speech_end()
        return stream

    def _watch_vad(self, seconds: float) -> None:
        """A VAD in speech whose speech time stands still past ``vad_stall`` is stuck.

        Its speech time grows with speech (and noise), and stands still only
        in the short silence before its end of speech; a VAD that hangs, or
        lost its end of speech, stays like that.
        """
        limit = self.timeouts.vad_stall
        spoken = self._vad_stream.speech_duration if self._vad_stream is not None else None
        if limit is None or spoken is None:
            return
        if spoken != self._vad_seen:
            self._vad_seen, self._vad_still = spoken, 0.0
            return
        self._vad_still += seconds
        stream = self._vad_stream
        if self._vad_still + 1e-9 < limit or self.vad is None or self.session is None or stream is None:
            return
        self.session.report_error(
            self.vad.label,
            ProviderError(
                f"timed out after {limit:g} s: stuck in speech, no end of speech and no new speech",
                provider=self.vad.label,
            ),
        )
        if self._vad_reader is not None:
            self._vad_reader.cancel()
        stream = self._replace_vad_stream(stream)
        self._vad_reader = asyncio.get_running_loop().create_task(self._read_vad(stream))

    def _background(self, awaitable: Any) -> None:
        """Run clean-up (closing a replaced stream) without waiting; the pipeline's close awaits it."""

        async def run() -> None:
            with contextlib.suppress(Exception):
                await awaitable

        def forget(task: asyncio.Task[None]) -> None:
            if task in self._tasks:
                self._tasks.remove(task)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.append(task)
        task.add_done_callback(forget)

    async def _read_stt(self, stream: STTStream) -> None:
        assert self.session is not None and self.turns is not None
        session, turns, label, restarts = self.session, self.turns, self.stt.label, Pacing()
        while True:
            try:
                async for item in stream:
                    event = check_speech_event(label, item)
                    restarts.succeeded()
                    if event.type is SpeechEventType.INTERIM_TRANSCRIPT:
                        turns.interim(event.text, event.language)
                    elif event.type is SpeechEventType.FINAL_TRANSCRIPT:
                        turns.final(event.text, event.language)
                    elif event.type is SpeechEventType.START_OF_SPEECH and self.vad is None:
                        self._on_speech_start()
                    elif event.type is SpeechEventType.END_OF_SPEECH and self.vad is None:
                        self._on_speech_end()
                if stream.input_ended or session.closed:
                    return
                raise ProviderError("stream ended early: it closed while audio was still coming", provider=label)
            except Exception as exc:
                error = as_provider_error(label, exc)
                session.report_error(label, error)
            if session.closed:
                return
            # The utterance in flight lost its transcript: release the turn
            # waiting for it, and listen on with a new stream, so one failed
            # request does not leave the session deaf.
            turns.stt_failed()
            stream = self._reopen_stt(stream)
            await restarts.pause(error)

    def _reopen_stt(self, old: STTStream) -> STTStream:
        """A fresh STT stream; if the user is speaking, its segment starts now."""
        self._background(old.aclose())
        stream = self._stt_stream = self._open_stt_stream()
        if isinstance(stream, SegmentedSTTStream) and self.turns is not None and self.turns.user_speaking:
            stream.start_segment()
        return stream

    def _on_stt_stuck(self, waited: float) -> None:
        """No final transcript came in time: drop the stuck request, listen on afresh."""
        assert self.session is not None and self.turns is not None
        self.session.report_error(
            self.stt.label,
            ProviderError(f"timed out after {waited:g} s waiting for the final transcript", provider=self.stt.label),
        )
        if self._stt_reader is not None:
            self._stt_reader.cancel()
        assert self._stt_stream is not None
        stream = self._reopen_stt(self._stt_stream)
        self._stt_reader = asyncio.get_running_loop().create_task(self._read_stt(stream))
        self.turns.stt_failed()
