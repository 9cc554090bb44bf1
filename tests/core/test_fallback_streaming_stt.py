"""FallbackSTT streaming: a provider's own stream, replaced with the audio no final covered replayed.

The promise: every final the user's speech deserves reaches the
conversation once and in order, whichever provider recognised it. A
failing provider's audio is replayed into the next one (streaming, or
non-streaming and segmented by the pipeline's VAD); audio a final already
covered is never replayed. Everything runs in virtual time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from vocalis import Agent, CascadingPipeline, EOUConfig
from vocalis.audio import AudioFrame
from vocalis.providers.adapters import SegmentedSTTStream
from vocalis.providers.base import ProviderError
from vocalis.providers.fallback import ConnectOptions, FallbackSTT
from vocalis.providers.fallback_stt import AudioLog, FallbackSTTStream
from vocalis.providers.stt import STT, SpeechEvent, SpeechEventType, STTStream
from vocalis.testing import Conversation, FakeLLM, FakeSTT, FakeTTS, FakeVAD, Fault, FaultySTT, run_virtual, tone
from vocalis.testing.fakes.signals import is_speech


class Tapped(STT):
    """A provider passed through, recording the audio its streams and recognitions get.

    Attributes:
        heard: Seconds of speech pushed into its streams.
        recognized: Seconds of speech in each final recognition.
        streams: Its streams, in order.
    """

    def __init__(self, inner: FakeSTT, name: str, *, sample_rate: int | None = None) -> None:
        super().__init__(settings=inner.settings)
        self.inner = inner
        self.name = name  # type: ignore[misc]
        self.streaming = inner.streaming  # type: ignore[misc]
        self.sample_rate = sample_rate or inner.sample_rate  # type: ignore[misc]
        self.heard = 0.0
        self.rates: set[int] = set()
        self.recognized: list[float] = []
        self.streams: list[_TapStream] = []

    async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        self.recognized.append(sum(f.duration for f in frames if is_speech(f)))
        return await self.inner.recognize(frames, language=language)

    async def recognize_interim(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        return await self.inner.recognize_interim(frames, language=language)

    def stream(self, *, language: str | None = None) -> STTStream:
        stream = _TapStream(self, self.inner.stream(language=language))
        self.streams.append(stream)
        return stream


class _TapStream(STTStream):
    def __init__(self, tap: Tapped, inner: STTStream) -> None:
        super().__init__(tap.label)
        self.tap, self.inner, self.closed = tap, inner, False
        self.start_task(self._pump())

    async def _pump(self) -> None:
        async for event in self.inner:
            self.send(event)

    def push_frame(self, frame: AudioFrame) -> None:
        self.tap.rates.add(frame.sample_rate)
        if is_speech(frame):
            self.tap.heard += frame.duration
        self.inner.push_frame(frame)

    def flush(self) -> None:
        self.inner.flush()

    def _on_end_input(self) -> None:
        self.inner.end_input()

    async def aclose(self) -> None:
        self.closed = True
        await super().aclose()
        await self.inner.aclose()


def conversation(stt: FallbackSTT, *, speculative: bool = True) -> Conversation:
    pipeline = CascadingPipeline(
        stt=stt,
        llm=FakeLLM(["Sure.", "Done."]),
        tts=FakeTTS(),
        vad=FakeVAD(),
        turn_detector=None,
        eou_config=None if speculative else EOUConfig(speculative_stt=0),
    )
    return Conversation(Agent("Be brief."), pipeline)


def finals(conv: Conversation) -> list[str]:
    return [p["text"] for p in conv.named("on_speech_in") if p["is_final"]]


def primary_failing_mid_utterance(after_events: int = 1) -> FaultySTT:
    """A streaming primary that drops its connection after ``after_events`` events (interims)."""
    inner = FakeSTT(["the primary heard this"], word_seconds=0.2)
    return FaultySTT(inner, Fault.RAISE_MID_STREAM, after_chunks=after_events, name="primary")


# -- the streaming decision ---------------------------------------------------------------------
def test_it_streams_when_its_first_provider_does() -> None:
    assert FallbackSTT([FakeSTT(), FakeSTT(streaming=False)]).streaming is True
    assert FallbackSTT([FakeSTT(streaming=False), FakeSTT()]).streaming is False
    assert FallbackSTT.streaming is False  # the class default is untouched


def test_its_stream_is_driven_like_a_segmented_one() -> None:
    async def main() -> None:
        stt = FallbackSTT([FakeSTT()])
        stream = stt.stream()
        assert isinstance(stream, FallbackSTTStream) and isinstance(stream, SegmentedSTTStream)
        await stream.aclose()

    run_virtual(main())


# -- failing mid-utterance -----------------------------------------------------------------------------
@pytest.mark.parametrize("streaming", [True, False], ids=["streaming-secondary", "segmented-secondary"])
def test_a_primary_failing_mid_utterance_hands_the_replayed_audio_to_the_secondary(streaming: bool) -> None:
    async def main() -> None:
        primary = primary_failing_mid_utterance()
        secondary = Tapped(FakeSTT(["book a table for two"], streaming=streaming), "secondary")
        stt = FallbackSTT([primary, secondary], connect=ConnectOptions(timeout=1.0))
        changes: list[dict[str, Any]] = []
        stt.events.on("availability_changed", changes.append)
        async with conversation(stt) as conv:
            await conv.silence(0.3)
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
        assert conv.user_turns() == ["book a table for two"]
        assert finals(conv) == ["book a table for two"]  # once
        assert conv.errors() == []
        assert [(c["provider"], c["available"]) for c in changes] == [("stt:primary", False)]
        # The whole utterance reached the secondary, including what was said before the failure.
        heard = secondary.heard if streaming else secondary.recognized[-1]
        assert heard == pytest.approx(1.0, abs=0.03)
        await stt.aclose()

    run_virtual(main())


def test_a_primary_failing_during_the_second_utterance_never_repeats_the_first() -> None:
    async def main() -> None:
        # "first question": two interims and a final, then one interim of the second utterance.
        primary = FaultySTT(
            FakeSTT(["first question", "lost by the primary"], word_seconds=0.2),
            Fault.RAISE_MID_STREAM,
            after_chunks=4,
            name="primary",
        )
        secondary = Tapped(FakeSTT(["second question"]), "secondary")
        stt = FallbackSTT([primary, secondary])
        async with conversation(stt) as conv:
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
        assert conv.user_turns() == ["first question", "second question"]
        assert finals(conv) == ["first question", "second question"]
        assert secondary.inner.recognized == ["second question"]  # the first utterance was not replayed
        assert secondary.heard == pytest.approx(1.0, abs=0.03)
        assert conv.errors() == []
        await stt.aclose()

    run_virtual(main())


def test_a_primary_that_never_answers_is_replaced_after_the_timeout() -> None:
    async def main() -> None:
        primary = FaultySTT(FakeSTT(["never"]), Fault.HANG, name="primary")
        secondary = Tapped(FakeSTT(["what time is it"]), "secondary")
        stt = FallbackSTT([primary, secondary], connect=ConnectOptions(timeout=1.0))
        changes: list[dict[str, Any]] = []
        stt.events.on("availability_changed", changes.append)
        async with conversation(stt) as conv:
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
        assert conv.user_turns() == ["what time is it"] and finals(conv) == ["what time is it"]
        assert "no final transcript within 1 s" in changes[0]["error"]
        assert conv.errors() == []
        await stt.aclose()

    run_virtual(main())


def test_a_primary_refusing_at_connect_leaves_the_secondary_streaming_from_the_start() -> None:
    async def main() -> None:
        primary = FaultySTT(FakeSTT(["never"]), Fault.RAISE_AT_START, name="primary")
        secondary = Tapped(FakeSTT(["hello", "again"], word_seconds=0.2), "secondary")
        stt = FallbackSTT([primary, secondary])
        async with conversation(stt) as conv:
            await conv.user_speaks(0.8)
            await conv.wait_for_agent_turn()
            await conv.user_speaks(0.8)
            await conv.wait_for_agent_turn()
        assert conv.user_turns() == ["hello", "again"]
        assert len(secondary.streams) == 1  # one stream listened all along
        assert not stt.fallback.available(primary) and primary.injected == 1
        await stt.aclose()

    run_virtual(main())


def test_a_provider_at_another_rate_gets_resampled_audio() -> None:
    async def main() -> None:
        primary = FaultySTT(FakeSTT(), Fault.RAISE_AT_START, name="primary")
        secondary = Tapped(FakeSTT(["hello"]), "secondary", sample_rate=8_000)
        stt = FallbackSTT([primary, secondary])
        async with conversation(stt) as conv:
            await conv.user_speaks(0.8)
            await conv.wait_for_agent_turn()
        assert conv.user_turns() == ["hello"] and secondary.rates == {8_000}
        await stt.aclose()

    run_virtual(main())


# -- the stream on its own ------------------------------------------------------------------------------
def test_every_provider_failing_ends_the_stream_with_one_clear_error() -> None:
    async def main() -> None:
        providers = [FaultySTT(FakeSTT(), Fault.RAISE_AT_START, times=None, name=n) for n in ("a", "b")]
        stream = FallbackSTT(providers).stream()
        with pytest.raises(ProviderError, match="every STT failed: stt:a: .*; stt:b: ") as info:
            async for _ in stream:
                pass
        assert info.value.provider == "stt:fallback"
        await stream.aclose()

    run_virtual(main())


def test_closing_the_stream_closes_the_provider_stream_and_leaves_no_task() -> None:
    async def main() -> None:
        before = asyncio.all_tasks()
        tapped = Tapped(FakeSTT(["hi"]), "only")
        stt = FallbackSTT([tapped])
        stream = stt.stream()
        stream.push_frame(tone(0.5))
        await asyncio.sleep(0.1)
        assert isinstance(stream, FallbackSTTStream) and stream.provider is tapped
        await stream.aclose()
        await asyncio.sleep(0)
        assert tapped.streams[0].closed and asyncio.all_tasks() == before
        await stream.aclose()  # idempotent

    run_virtual(main())


def test_a_replay_does_not_repeat_the_speech_boundaries_the_reader_already_has() -> None:
    class Boundaries(STTStream):
        """Reports speech boundaries itself (like a provider's own VAD), then fails if asked."""

        def __init__(self, label: str, fail: bool) -> None:
            super().__init__(label)
            self.fail_after_start = fail

        def push_frame(self, frame: AudioFrame) -> None:
            if is_speech(frame) and not getattr(self, "speaking", False):
                self.speaking = True
                self.send(SpeechEvent(SpeechEventType.START_OF_SPEECH))
                if self.fail_after_start:
                    self.fail(ConnectionResetError("dropped"))

        def flush(self) -> None:
            self.send(SpeechEvent(SpeechEventType.END_OF_SPEECH))
            self.send(SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, "hi"))

    class Boundary(FakeSTT):
        def __init__(self, name: str, fail: bool) -> None:
            super().__init__()
            self.name, self.fail = name, fail  # type: ignore[misc]

        def stream(self, *, language: str | None = None) -> STTStream:
            return Boundaries(self.label, self.fail)

    async def main() -> None:
        stream = FallbackSTT([Boundary("a", True), Boundary("b", False)]).stream()
        stream.push_frame(tone(0.1))  # "a" reports the start of speech, then fails
        await asyncio.sleep(0)
        stream.push_frame(tone(0.1))
        stream.flush()
        stream.end_input()
        events = [event.type async for event in stream]
        assert events == [
            SpeechEventType.START_OF_SPEECH,  # once, though "b" heard the start again
            SpeechEventType.END_OF_SPEECH,
            SpeechEventType.FINAL_TRANSCRIPT,
        ]

    run_virtual(main())


def test_speech_the_provider_finalised_on_its_own_owes_no_final_at_its_flush() -> None:
    class Endpointing(STTStream):
        """Finalises after 0.5 s of speech by itself (its own endpointing) and ignores flushes."""

        def __init__(self, label: str) -> None:
            super().__init__(label)
            self.speech = 0.0

        def push_frame(self, frame: AudioFrame) -> None:
            self.speech += frame.duration if is_speech(frame) else 0.0
            if self.speech >= 0.5:
                self.speech = 0.0
                self.send(SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, "on its own", end_time=0.5))

    class EndpointingSTT(FakeSTT):
        def stream(self, *, language: str | None = None) -> STTStream:
            return Endpointing(self.label)

    async def main() -> None:
        primary = EndpointingSTT()
        stt = FallbackSTT([primary, FakeSTT(["never asked"])], connect=ConnectOptions(timeout=1.0))
        stream = stt.stream()
        assert isinstance(stream, FallbackSTTStream)
        stream.start_segment()
        for _ in range(5):
            stream.push_frame(tone(0.1))
        await asyncio.sleep(0)
        stream.flush()  # the VAD's end of speech, after the provider's own final
        await asyncio.sleep(5.0)
        assert stream.provider is primary and stt.fallback.available(primary)  # not taken as stuck
        stream.end_input()
        assert [e.text async for e in stream] == ["on its own"]
        await stream.aclose()

    run_virtual(main())


# -- the audio log -----------------------------------------------------------------------------------------
class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def push(self, frame: AudioFrame) -> None:
        self.calls.append(f"{frame.duration:g}")

    def start(self) -> None:
        self.calls.append("start")

    def flush(self) -> None:
        self.calls.append("flush")


def test_a_final_drops_the_audio_up_to_the_segment_it_answers() -> None:
    log = AudioLog(30.0)
    log.add_frame(tone(0.25))
    log.mark("start")
    log.add_frame(tone(0.5))
    assert log.mark("flush").kind == "end"
    log.add_frame(tone(0.125))
    log.mark("start")
    log.add_frame(tone(0.5))
    assert log.mark("flush").kind == "end" and log.owed == 2
    log.finalised(None)  # the first segment's final: the second is still owed
    recorder = Recorder()
    assert log.replay(recorder.push, recorder.start, recorder.flush) == 1
    assert recorder.calls == ["0.125", "start", "0.5", "flush"]


def test_a_final_nobody_asked_for_drops_the_audio_up_to_its_last_word_or_all_of_it() -> None:
    log = AudioLog(30.0)
    for _ in range(4):
        log.add_frame(tone(0.25))
    log.finalised(0.5)  # the recogniser finalised the first half on its own
    recorder = Recorder()
    log.replay(recorder.push, None, recorder.flush)
    assert recorder.calls == ["0.25", "0.25"]
    log.mark("start")
    log.finalised(None)  # no time given: everything so far
    recorder = Recorder()
    log.replay(recorder.push, recorder.start, recorder.flush)
    assert recorder.calls == ["start"]  # the segment is still open where the log begins


def test_the_log_is_bounded_and_keeps_an_open_segment_open() -> None:
    log = AudioLog(1.0)
    log.mark("start")
    for _ in range(12):
        log.add_frame(tone(0.25))
    recorder = Recorder()
    log.replay(recorder.push, recorder.start, recorder.flush)
    assert recorder.calls == ["start", "0.25", "0.25", "0.25", "0.25"]  # the newest second, in its segment
    assert log.position == pytest.approx(3.0)
