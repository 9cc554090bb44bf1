"""Tests for the streaming adapters, the provider stream channel and audio playout timing.

Everything async runs under :func:`vocalis.testing.run_virtual`, so provider
latencies and playout durations cost no wall time and times are exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, TypeVar

import pytest

from vocalis.audio import AudioFrame
from vocalis.providers.adapters import SegmentedSTTStream, SentenceTTSStream
from vocalis.providers.base import ProviderError
from vocalis.providers.streams import ProviderStream
from vocalis.providers.stt import SpeechEvent, SpeechEventType
from vocalis.providers.transport import AudioOutput, PlaybackResult
from vocalis.providers.tts import SynthesizedAudio
from vocalis.testing import FakeSTT, FakeTTS, RecordingAudioOutput, run_virtual, tone

T = TypeVar("T")

# 1/64 s frames keep every sum of durations exact in binary floating point.
TICK = 1 / 64


def now() -> float:
    return asyncio.get_running_loop().time()


def frame(seconds: float = TICK, *, speech: bool = True) -> AudioFrame:
    return tone(seconds) if speech else AudioFrame.silence(seconds)


async def collect(stream: ProviderStream[T]) -> list[T]:
    return [event async for event in stream]


def same(a: Sequence[object], b: Sequence[object]) -> bool:
    """The very same objects in the same order (frames of equal content don't count)."""
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))  # noqa: B905


def segments(events: list[SynthesizedAudio]) -> list[list[SynthesizedAudio]]:
    """Split TTS output at segment_end markers (a trailing open segment is kept)."""
    out: list[list[SynthesizedAudio]] = [[]]
    for event in events:
        out[-1].append(event)
        if event.segment_end:
            out.append([])
    return out[:-1] if not out[-1] else out


# -- SentenceTTSStream ----------------------------------------------------------------


def test_tts_stream_speaks_sentences_in_order_with_segment_markers() -> None:
    """Each sentence becomes one segment: text on its first frame, segment_end on its last."""
    text = "Hello there, my friend. How are you today? I am fine."
    sentences = ["Hello there, my friend.", "How are you today?", "I am fine."]

    async def main() -> tuple[FakeTTS, list[SynthesizedAudio]]:
        tts = FakeTTS(ttfb=0.05, seconds_per_char=0.01, frame_seconds=0.02)
        stream = tts.stream()
        assert isinstance(stream, SentenceTTSStream)
        for word in text.split(" "):
            stream.push_text(word + " ")
        stream.end_input()
        return tts, await collect(stream)

    tts, events = run_virtual(main())
    assert tts.spoken == sentences
    groups = segments(events)
    assert [g[0].text for g in groups] == sentences
    for sentence, group in zip(sentences, groups, strict=True):
        assert len(group) == round(len(sentence) * 0.01 / 0.02)
        assert [e.text for e in group[1:]] == [""] * (len(group) - 1)
        assert [e.segment_end for e in group] == [False] * (len(group) - 1) + [True]
        assert all(e.frame.sample_rate == FakeTTS.sample_rate for e in group)


def test_tts_stream_single_frame_segment_has_text_and_end() -> None:
    """A sentence that fits in one frame carries both its text and segment_end."""

    async def main() -> list[SynthesizedAudio]:
        stream = SentenceTTSStream(FakeTTS(seconds_per_char=0.001, frame_seconds=0.02))
        stream.push_text("Okay then.")
        stream.end_input()
        return await collect(stream)

    (only,) = run_virtual(main())
    assert (only.text, only.segment_end) == ("Okay then.", True)


def test_tts_stream_starts_speaking_before_input_ends() -> None:
    """A completed sentence is synthesised right away, not when the reply is over."""

    async def main() -> tuple[SynthesizedAudio, float, list[str]]:
        tts = FakeTTS(ttfb=0.1)
        stream = tts.stream()
        stream.push_text("The first sentence is done. The second")
        first = await stream.__anext__()
        at, spoken = now(), list(tts.spoken)
        stream.end_input()
        await collect(stream)
        return first, at, spoken

    first, at, spoken = run_virtual(main())
    assert first.text == "The first sentence is done."
    assert at == pytest.approx(0.1)
    assert spoken == ["The first sentence is done."]


def test_tts_stream_flush_releases_partial_text() -> None:
    """flush() synthesises pending text without waiting for a sentence end."""

    async def main() -> list[str]:
        tts = FakeTTS()
        stream = tts.stream()
        stream.push_text("no full stop yet")
        stream.flush()
        await stream.__anext__()
        spoken = list(tts.spoken)
        await stream.aclose()
        return spoken

    assert run_virtual(main()) == ["no full stop yet"]


def test_tts_stream_skips_unspeakable_text() -> None:
    """Punctuation-only leftovers are not sent to the TTS."""

    async def main() -> tuple[list[str], list[SynthesizedAudio]]:
        tts = FakeTTS()
        stream = tts.stream()
        stream.push_text("Right, that is all for now. ...")
        stream.end_input()
        return tts.spoken, await collect(stream)

    spoken, events = run_virtual(main())
    assert spoken == ["Right, that is all for now."]
    assert [e.text for e in events if e.text] == ["Right, that is all for now."]


def test_tts_stream_push_after_end_input_raises() -> None:
    """Text after end_input() is a caller bug and raises instead of being dropped."""

    async def main() -> None:
        stream = FakeTTS().stream()
        stream.push_text("Some words here. ")
        stream.end_input()
        with pytest.raises(RuntimeError, match="after end_input"):
            stream.push_text("more")
        await collect(stream)

    run_virtual(main())


def test_tts_stream_with_nothing_to_say_ends() -> None:
    """end_input() with no text ends the stream without output."""

    async def main() -> list[SynthesizedAudio]:
        stream = FakeTTS().stream()
        stream.end_input()
        return await collect(stream)

    assert run_virtual(main()) == []


class CrashingTTS(FakeTTS):
    """Speaks normally until it meets "boom", then fails with a plain exception."""

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        if "boom" in text:
            await asyncio.sleep(0.01)
            raise RuntimeError("engine crashed")
        async for audio in super().synthesize(text):
            yield audio


def test_tts_failure_ends_stream_with_labelled_provider_error() -> None:
    """A raising synthesize() delivers earlier audio, then a ProviderError naming the TTS."""

    async def main() -> tuple[str, list[SynthesizedAudio], ProviderError, list[SynthesizedAudio]]:
        tts = CrashingTTS()
        stream = tts.stream()
        stream.push_text("This one works fine. Then boom goes the engine. Never said.")
        stream.end_input()
        received: list[SynthesizedAudio] = []
        with pytest.raises(ProviderError) as info:
            async for event in stream:
                received.append(event)
        return tts.label, received, info.value, await collect(stream)

    label, received, error, after = run_virtual(main())
    assert label == "tts:fake"
    assert received and received[0].text == "This one works fine." and received[-1].segment_end
    assert error.provider == label
    assert str(error) == "tts:fake: RuntimeError: engine crashed"
    assert isinstance(error.__cause__, RuntimeError)
    assert after == []  # iteration after the failure just ends


def test_tts_provider_error_keeps_its_own_label() -> None:
    """A ProviderError raised by the TTS itself reaches the reader unchanged."""

    async def main() -> ProviderError:
        stream = FakeTTS(fail_on="secret").stream()
        stream.push_text("Tell me the secret now. ")
        stream.end_input()
        with pytest.raises(ProviderError) as info:
            await collect(stream)
        return info.value

    error = run_virtual(main())
    assert error.provider == "tts:fake"
    assert "cannot speak" in str(error)


def test_tts_aclose_mid_stream_cancels_worker() -> None:
    """aclose() while a sentence is being synthesised stops at once and leaves no task behind."""

    async def main() -> None:
        before = asyncio.all_tasks()
        tts = FakeTTS(ttfb=5.0)
        stream = tts.stream()
        stream.push_text("A sentence that takes long. ")
        await asyncio.sleep(1.0)
        assert tts.spoken == ["A sentence that takes long."]  # the worker is inside synthesize
        assert asyncio.all_tasks() != before
        await stream.aclose()
        assert now() == 1.0
        await asyncio.sleep(0)  # let any finaliser callbacks run
        assert asyncio.all_tasks() == before
        assert await collect(stream) == []
        with pytest.raises(RuntimeError):
            stream.push_text("more")
        await stream.aclose()  # idempotent

    run_virtual(main())


# -- SegmentedSTTStream -------------------------------------------------------------------


class RecordingSTT(FakeSTT):
    """FakeSTT (non-streaming) that keeps the audio of every final and interim recognition.

    With ``describe=True`` it answers with the audio length in ms instead of the
    script, which makes interim results checkable.
    """

    def __init__(self, transcripts: Sequence[str] = (), *, describe: bool = False, **kwargs: Any) -> None:
        super().__init__(transcripts, streaming=False, **kwargs)
        self.describe = describe
        self.finals: list[list[AudioFrame]] = []
        self.interims: list[list[AudioFrame]] = []
        self.active = 0
        self.max_active = 0

    async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        self.finals.append(list(frames))
        return await self._track(frames, super().recognize(frames, language=language))

    async def recognize_interim(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        self.interims.append(list(frames))
        return await self._track(frames, super().recognize_interim(frames, language=language))

    async def _track(self, frames: Sequence[AudioFrame], work: Coroutine[Any, Any, SpeechEvent]) -> SpeechEvent:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            event = await work
        finally:
            self.active -= 1
        if self.describe:
            event.text = f"{round(sum(f.duration for f in frames) * 1000)} ms"
        return event


def test_fake_stt_non_streaming_refuses_stream() -> None:
    """FakeSTT(streaming=False) only offers recognize(), as the adapter assumes."""
    with pytest.raises(NotImplementedError):
        FakeSTT(streaming=False).stream()


def test_segmented_stt_final_per_segment_with_preroll() -> None:
    """Each VAD segment gives one final, recognised from pre-roll audio plus the segment."""
    before = [frame(0.01, speech=False) for _ in range(100)]
    speech = [frame(0.01) for _ in range(50)]
    gap = [frame(0.01, speech=False) for _ in range(40)]
    speech2 = [frame(0.01) for _ in range(20)]

    async def main() -> tuple[RecordingSTT, list[SpeechEvent]]:
        stt = RecordingSTT(["hello there ", "second"], final_delay=0.2)
        stream = SegmentedSTTStream(stt, language="de", interim_interval=0, preroll=0.3)
        for f in before:
            stream.push_frame(f)
        stream.start_segment()
        for f in speech:
            stream.push_frame(f)
        stream.flush()
        for f in gap:
            stream.push_frame(f)
        stream.start_segment()
        for f in speech2:
            stream.push_frame(f)
        stream.flush()
        stream.flush()  # no open segment: nothing happens
        stream.end_input()
        return stt, await collect(stream)

    stt, events = run_virtual(main())
    assert [(e.type, e.text, e.language) for e in events] == [
        (SpeechEventType.FINAL_TRANSCRIPT, "hello there", "de"),
        (SpeechEventType.FINAL_TRANSCRIPT, "second", "de"),
    ]
    assert stt.interims == []
    assert len(stt.finals) == 2
    first, second = stt.finals
    assert same(first[-50:], speech)
    preroll = first[:-50]
    assert 30 <= len(preroll) <= 31  # at least 0.3 s, less than one frame more
    assert same(preroll, before[-len(preroll) :])  # the audio right before the VAD start
    assert same(second[-20:], speech2)
    assert same(second[:-20], gap[-(len(second) - 20) :])


def test_segmented_stt_without_preroll_uses_only_the_segment() -> None:
    """preroll=0 sends exactly the frames pushed after start_segment()."""
    speech = [frame() for _ in range(10)]

    async def main() -> RecordingSTT:
        stt = RecordingSTT(["x"], final_delay=0)
        stream = SegmentedSTTStream(stt, interim_interval=0, preroll=0)
        for _ in range(20):
            stream.push_frame(frame(speech=False))
        stream.start_segment()
        for f in speech:
            stream.push_frame(f)
        stream.end_input()  # ends the open segment too
        await collect(stream)
        return stt

    (final,) = run_virtual(main()).finals
    assert same(final, speech)


def test_segmented_stt_interims_at_interval_and_final() -> None:
    """Real-time speech gets an interim every interval of new audio, then the final."""

    async def main() -> tuple[list[tuple[float, SpeechEventType, str]], RecordingSTT]:
        stt = RecordingSTT(describe=True, final_delay=0.01)
        stream = SegmentedSTTStream(stt, interim_interval=0.125, preroll=0)
        seen: list[tuple[float, SpeechEventType, str]] = []

        async def read() -> None:
            async for event in stream:
                seen.append((now(), event.type, event.text))

        reader = asyncio.create_task(read())
        stream.start_segment()
        for _ in range(32):  # 0.5 s of speech in real time
            stream.push_frame(frame())
            await asyncio.sleep(TICK)
        stream.flush()
        stream.end_input()
        await reader
        return seen, stt

    seen, stt = run_virtual(main())
    interim, final = SpeechEventType.INTERIM_TRANSCRIPT, SpeechEventType.FINAL_TRANSCRIPT
    assert [(kind, text) for _, kind, text in seen] == [
        (interim, "125 ms"),
        (interim, "250 ms"),
        (interim, "375 ms"),
        (interim, "500 ms"),
        (final, "500 ms"),
    ]
    # each interim arrives one recognition latency after its audio was pushed
    assert [round(t, 6) for t, _, _ in seen[:3]] == [round(k * 0.125 - TICK + 0.01, 6) for k in (1, 2, 3)]
    assert len(stt.interims) == 4 and len(stt.finals) == 1
    assert stt.max_active == 1


def test_segmented_stt_skips_stale_interim() -> None:
    """An interim still queued when the segment's final is queued is never recognised."""

    async def main() -> tuple[list[SpeechEvent], RecordingSTT]:
        stt = RecordingSTT(["the final"], final_delay=0.05)
        stream = SegmentedSTTStream(stt, interim_interval=0.125, preroll=0)
        stream.start_segment()
        for _ in range(8):  # exactly one interval: an interim job is queued
            stream.push_frame(frame())
        stream.flush()  # ...and the final right behind it, before the worker ran
        stream.end_input()
        return await collect(stream), stt

    events, stt = run_virtual(main())
    assert [(e.type, e.text) for e in events] == [(SpeechEventType.FINAL_TRANSCRIPT, "the final")]
    assert stt.interims == []
    assert len(stt.finals) == 1 and len(stt.finals[0]) == 8


def test_segmented_stt_one_interim_at_a_time() -> None:
    """While a slow interim runs no new one is queued; the next comes after it finishes."""

    async def main() -> tuple[list[SpeechEvent], RecordingSTT]:
        stt = RecordingSTT(describe=True, final_delay=0.3)
        stream = SegmentedSTTStream(stt, interim_interval=0.125, preroll=0)
        stream.start_segment()
        for _ in range(64):  # 1 s
            stream.push_frame(frame())
            await asyncio.sleep(TICK)
        stream.flush()
        stream.end_input()
        return await collect(stream), stt

    events, stt = run_virtual(main())
    assert stt.max_active == 1
    interims = [e.text for e in events if e.type is SpeechEventType.INTERIM_TRANSCRIPT]
    # started at 0.125 s (done 0.425 s), then at the next frame after that; the one
    # started at 0.75 s ends after the segment (at 1 s) and is dropped as stale
    assert interims == ["125 ms", "438 ms"]
    assert events[-1].type is SpeechEventType.FINAL_TRANSCRIPT
    assert events[-1].text == "1000 ms"


def test_segmented_stt_empty_interim_is_not_sent() -> None:
    """An interim recognition with no words produces no event."""

    async def main() -> tuple[list[SpeechEvent], RecordingSTT]:
        stt = RecordingSTT(["done"], final_delay=0.01)  # the interim is half of one word: ""
        stream = SegmentedSTTStream(stt, interim_interval=0.125, preroll=0)
        stream.start_segment()
        for _ in range(8):
            stream.push_frame(frame())
        await asyncio.sleep(0.1)  # the interim completes
        stream.flush()
        stream.end_input()
        return await collect(stream), stt

    events, stt = run_virtual(main())
    assert len(stt.interims) == 1
    assert [(e.type, e.text) for e in events] == [(SpeechEventType.FINAL_TRANSCRIPT, "done")]


def test_segmented_stt_interims_use_recognize_interim() -> None:
    """Interims come from recognize_interim() and do not use up the segment's final transcript."""

    async def main() -> list[SpeechEvent]:
        stt = RecordingSTT(["turn on the lights"], final_delay=0.01)
        stream = SegmentedSTTStream(stt, language="en", interim_interval=0.125, preroll=0)
        stream.start_segment()
        for _ in range(8):
            stream.push_frame(frame())
        await asyncio.sleep(0.1)
        stream.flush()
        stream.end_input()
        return await collect(stream)

    events = run_virtual(main())
    assert [(e.type, e.text, e.language) for e in events] == [
        (SpeechEventType.INTERIM_TRANSCRIPT, "turn on", "en"),
        (SpeechEventType.FINAL_TRANSCRIPT, "turn on the lights", "en"),
    ]


# -- ProviderStream ------------------------------------------------------------------------


def test_provider_stream_end_stops_every_iteration() -> None:
    """Events sent before end_input() are read; later iterations and sends see the end."""

    async def main() -> tuple[list[int], list[int], list[int]]:
        stream: ProviderStream[int] = ProviderStream("stt:x")
        stream.send(1)
        stream.send(2)
        stream.end_input()
        assert stream.input_ended
        stream.send(3)  # after the end: dropped
        return await collect(stream), await collect(stream), await collect(stream)

    assert run_virtual(main()) == ([1, 2], [], [])


def test_provider_stream_fail_wraps_plain_exceptions() -> None:
    """fail() turns any exception into a ProviderError with the label, chained to the cause."""

    async def main() -> tuple[list[int], ProviderError, list[int]]:
        stream: ProviderStream[int] = ProviderStream("llm:acme")
        stream.send(1)
        cause = ValueError("bad token")
        stream.fail(cause)
        stream.fail(KeyError("second failure is ignored"))
        stream.send(2)
        got: list[int] = []
        with pytest.raises(ProviderError) as info:
            async for item in stream:
                got.append(item)
        assert info.value.__cause__ is cause
        return got, info.value, await collect(stream)

    got, error, after = run_virtual(main())
    assert got == [1]
    assert error.provider == "llm:acme"
    assert str(error) == "llm:acme: ValueError: bad token"
    assert after == []


def test_provider_stream_fail_labels_unlabelled_provider_errors() -> None:
    """A ProviderError without a provider gets the stream's label; one with a label keeps it."""

    async def main() -> tuple[ProviderError, ProviderError]:
        errors = []
        originals = (
            ProviderError("quota", recoverable=False),
            ProviderError("down", provider="tts:other"),
        )
        for original in originals:
            stream: ProviderStream[int] = ProviderStream("tts:mine")
            stream.fail(original)
            with pytest.raises(ProviderError) as info:
                await collect(stream)
            assert info.value is original
            errors.append(info.value)
        return errors[0], errors[1]

    unlabelled, labelled = run_virtual(main())
    assert (unlabelled.provider, unlabelled.recoverable) == ("tts:mine", False)
    assert labelled.provider == "tts:other"


def test_provider_stream_fail_after_end_is_ignored() -> None:
    """Once ended, a late failure does not turn the end into an error."""

    async def main() -> list[int]:
        stream: ProviderStream[int] = ProviderStream("vad:x")
        stream.end_input()
        stream.fail(RuntimeError("late"))
        return await collect(stream)

    assert run_virtual(main()) == []


def test_provider_stream_worker_exception_fails_stream() -> None:
    """An exception in the start_task() worker reaches the reader, labelled."""

    async def main() -> tuple[list[str], ProviderError]:
        stream: ProviderStream[str] = ProviderStream("stt:worker")

        async def work() -> None:
            stream.send("partial")
            await asyncio.sleep(0.5)
            raise ConnectionError("socket closed")

        stream.start_task(work())
        got: list[str] = []
        with pytest.raises(ProviderError) as info:
            async for item in stream:
                got.append(item)
        assert now() == 0.5
        return got, info.value

    got, error = run_virtual(main())
    assert got == ["partial"]
    assert error.provider == "stt:worker"
    assert isinstance(error.__cause__, ConnectionError)


def test_provider_stream_worker_return_ends_stream() -> None:
    """A worker that returns ends the stream, even though end_input() was not called."""

    async def main() -> list[int]:
        stream: ProviderStream[int] = ProviderStream("x")

        async def work() -> None:
            for i in range(3):
                await asyncio.sleep(0.1)
                stream.send(i)

        stream.start_task(work())
        return await collect(stream)

    assert run_virtual(main()) == [0, 1, 2]


def test_provider_stream_aclose_cancels_worker() -> None:
    """aclose() cancels a running worker, ends iteration, and is idempotent."""

    async def main() -> None:
        stream: ProviderStream[int] = ProviderStream("x")
        cancelled = asyncio.Event()

        async def work() -> None:
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        before = asyncio.all_tasks()
        stream.start_task(work())
        await asyncio.sleep(0)
        await stream.aclose()
        assert cancelled.is_set() and stream.input_ended
        assert asyncio.all_tasks() == before
        assert await collect(stream) == []
        await stream.aclose()
        assert now() == 0.0

    run_virtual(main())


# -- AudioOutput ------------------------------------------------------------------------------


def test_playout_ends_after_the_pushed_duration() -> None:
    """wait_for_playout() returns exactly when the pushed audio has played."""

    async def main() -> tuple[PlaybackResult, float, list[bool]]:
        output = RecordingAudioOutput()
        speaking = [output.speaking]
        await asyncio.sleep(2.0)
        for _ in range(8):  # 0.125 s, pushed at once (faster than real time)
            await output.capture_frame(frame())
        speaking.append(output.speaking)
        output.flush()
        result = await output.wait_for_playout()
        speaking.append(output.speaking)
        assert len(output.frames) == output.frames_out == 8
        assert all(p.time == 2.0 for p in output.frames)
        return result, now(), speaking

    result, end, speaking = run_virtual(main())
    assert result == PlaybackResult(0.125, interrupted=False)
    assert end == 2.125
    assert speaking == [False, True, False]


def test_playout_waits_for_frames_pushed_in_real_time() -> None:
    """Audio arriving at playback speed ends one frame after the last arrival."""

    async def main() -> tuple[PlaybackResult, float]:
        output = AudioOutput()
        waiter = asyncio.create_task(output.wait_for_playout())  # nothing queued yet
        assert await waiter == PlaybackResult(0.0, interrupted=False)
        for _ in range(16):
            await output.capture_frame(frame())
            await asyncio.sleep(TICK)
        waiter = asyncio.create_task(output.wait_for_playout())
        await asyncio.sleep(0.5)
        assert not waiter.done()  # not flushed: more audio may come
        output.flush()
        return await waiter, now()

    result, end = run_virtual(main())
    assert result == PlaybackResult(0.25, interrupted=False)
    assert end == 0.75  # flushed after the audio had already played: ends at once


def test_clear_buffer_reports_heard_position() -> None:
    """Clearing mid-way returns the seconds played and ends waiters as interrupted."""

    async def main() -> None:
        output = RecordingAudioOutput()
        assert output.clear_buffer() == 0.0 and output.clears == []  # idle: nothing to clear
        for _ in range(64):  # 1 s
            await output.capture_frame(frame())
        output.flush()
        waiters = [asyncio.create_task(output.wait_for_playout()) for _ in range(2)]
        await asyncio.sleep(0.375)
        assert output.speaking
        assert output.clear_buffer() == 0.375
        assert output.clears == [0.375]
        assert not output.speaking
        for waiter in waiters:
            assert await waiter == PlaybackResult(0.375, interrupted=True)
        assert now() == 0.375
        assert output.clear_buffer() == 0.0 and output.clears == [0.375]

    run_virtual(main())


def test_clear_buffer_during_underrun_counts_only_played_audio() -> None:
    """A gap between frames (slow TTS) is not counted as heard audio."""

    async def main() -> float:
        output = AudioOutput()
        for _ in range(16):  # 0.25 s, plays 0 .. 0.25
            await output.capture_frame(frame())
        await asyncio.sleep(0.5)  # nothing plays from 0.25 to 0.5
        for _ in range(16):  # plays 0.5 .. 0.75
            await output.capture_frame(frame())
        await asyncio.sleep(0.125)
        return output.clear_buffer()

    assert run_virtual(main()) == 0.375


def test_second_segment_starts_fresh() -> None:
    """After a segment ends (played or cleared) the next one has its own timeline."""

    async def main() -> list[tuple[PlaybackResult, float]]:
        output = AudioOutput()
        results = []
        for _ in range(8):
            await output.capture_frame(frame())
        output.flush()
        results.append((await output.wait_for_playout(), now()))  # ends at 0.125
        await asyncio.sleep(1.0)
        for _ in range(16):
            await output.capture_frame(frame())
        output.flush()
        results.append((await output.wait_for_playout(), now()))  # 1.125 + 0.25
        for _ in range(16):
            await output.capture_frame(frame())
        await asyncio.sleep(0.0625)
        results.append((PlaybackResult(output.clear_buffer(), True), now()))
        for _ in range(4):
            await output.capture_frame(frame())
        output.flush()
        results.append((await output.wait_for_playout(), now()))
        return results

    assert run_virtual(main()) == [
        (PlaybackResult(0.125, interrupted=False), 0.125),
        (PlaybackResult(0.25, interrupted=False), 1.375),
        (PlaybackResult(0.0625, interrupted=True), 1.4375),
        (PlaybackResult(0.0625, interrupted=False), 1.5),
    ]


def test_speaking_ends_after_flush_without_a_waiter() -> None:
    """The playout timer runs on flush, so `speaking` clears even if nobody waits."""
    from vocalis.providers.transport import AudioOutput

    async def main() -> None:
        output = AudioOutput()
        await output.capture_frame(AudioFrame.silence(0.5, 16_000))
        output.flush()
        assert output.speaking
        await asyncio.sleep(0.6)
        assert not output.speaking
        result = await output.wait_for_playout()
        assert result.position == 0.5 and not result.interrupted

    run_virtual(main())


def test_aclose_does_not_swallow_the_callers_cancellation() -> None:
    from vocalis.providers.streams import ProviderStream

    async def main() -> None:
        stream: ProviderStream[int] = ProviderStream("test:x")

        async def stubborn() -> None:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                await asyncio.sleep(1)  # slow clean-up
                raise

        stream.start_task(stubborn())
        closer = asyncio.ensure_future(stream.aclose())
        await asyncio.sleep(0.1)
        closer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closer

    run_virtual(main())


def test_interim_finishing_after_the_segment_ended_is_dropped() -> None:
    """A slow interim must not arrive after the turn: it would read as new words."""
    from vocalis.testing import FakeSTT

    class SlowInterims(FakeSTT):
        async def recognize_interim(self, frames, *, language=None):
            await asyncio.sleep(0.5)
            return await super().recognize_interim(frames, language=language)

    async def main() -> list[str]:
        stt = SlowInterims(["turn on the lights"], final_delay=0.05, streaming=False)
        stream = SegmentedSTTStream(stt, interim_interval=0.2)
        stream.start_segment()
        for _ in range(15):  # 0.3 s of speech: one interim starts
            stream.push_frame(tone(0.02))
            await asyncio.sleep(0.02)
        stream.flush()
        stream.end_input()
        kinds = [event.type.value async for event in stream]
        await stream.aclose()
        return kinds

    assert run_virtual(main()) == ["final_transcript"]
