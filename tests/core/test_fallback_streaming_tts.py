"""FallbackTTS.stream(): a provider's own stream, replaced before its first audio or between sentences.

A native streaming TTS (``StreamingTTS`` below, like a WebSocket TTS: text
in as it is written, a segment of audio per sentence, labelled with its
text and word timings) must keep streaming inside a ``FallbackTTS``, and a
failure must never make the listener hear words twice. Everything runs in
virtual time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, ClassVar

import pytest

from vocalis import Agent, CascadingPipeline
from vocalis.audio import AudioFrame
from vocalis.providers.base import ProviderError
from vocalis.providers.fallback import ConnectOptions, FallbackTTS
from vocalis.providers.fallback_tts import FallbackTTSStream, TextLog
from vocalis.providers.tts import TTS, SynthesizedAudio, TTSStream, WordTiming
from vocalis.testing import (
    Conversation,
    FakeLLM,
    FakeSTT,
    FakeTTS,
    FakeVAD,
    Fault,
    FaultyTTS,
    run_virtual,
    tone,
)
from vocalis.text import SentenceChunker

REPLY = "Hello there. How are you today? I am fine."
SENTENCES = ["Hello there.", "How are you today?", "I am fine."]
FRAME = tone(0.02, 24_000)


class StreamingTTS(TTS):
    """A native streaming TTS: one labelled segment (with word timings) per sentence.

    Args:
        name: The label's name.
        fail: ``"connect"`` (the stream fails at once), ``"hang"`` (never
            any audio) or ``"after"`` (the connection drops after
            ``after_frames`` frames).
        after_frames: Frames sent before an ``"after"`` failure.
        ttfb: Seconds before each sentence's first frame.
        times: Streams that fail (later ones work).
    """

    name: ClassVar[str] = "streaming"

    def __init__(
        self,
        name: str = "streaming",
        *,
        fail: str | None = None,
        after_frames: int = 0,
        ttfb: float = 0.05,
        times: int | None = None,
    ) -> None:
        super().__init__()
        self.name = name  # type: ignore[misc]
        self.fail = fail
        self.after_frames = after_frames
        self.ttfb = ttfb
        self.times = times
        self.streams: list[_Stream] = []
        self.spoken: list[str] = []

    def stream(self) -> TTSStream:
        failing = self.fail if self.times is None or len(self.streams) < self.times else None
        stream = _Stream(self, failing)
        self.streams.append(stream)
        return stream


class _Stream(TTSStream):
    def __init__(self, tts: StreamingTTS, fail: str | None) -> None:
        super().__init__(tts.label)
        self.tts = tts
        self.fail_how = fail
        self.received = ""
        self.flushes = 0
        self.closed = False
        self._chunker = SentenceChunker(first_chunk_chars=0)
        self._pending: deque[str] = deque()
        self._wake = asyncio.Event()
        self.start_task(self._run())

    def push_text(self, text: str) -> None:
        self.received += text
        self._pending.extend(self._chunker.push(text))
        self._wake.set()

    def flush(self) -> None:
        self.flushes += 1
        self._pending.extend(self._chunker.flush())
        self._wake.set()

    def _on_end_input(self) -> None:
        self._pending.extend(self._chunker.flush())
        self._wake.set()

    async def _run(self) -> None:
        if self.fail_how == "connect":
            raise ConnectionRefusedError("refused the connection")
        sent = 0
        while True:
            while not self._pending:
                if self.input_ended:
                    return
                self._wake.clear()
                await self._wake.wait()
            sentence = self._pending.popleft()
            if self.fail_how == "hang":
                await asyncio.get_running_loop().create_future()
            await asyncio.sleep(self.tts.ttfb)
            frames = max(2, len(sentence) // 4)
            for index in range(frames):
                if self.fail_how == "after" and sent == self.tts.after_frames:
                    raise ConnectionResetError("the connection dropped")
                words = (WordTiming(sentence.split()[0], 0.0, 0.02),) if index == 0 else ()
                text = sentence if index == 0 else ""
                await self.wait_for_room(50)
                self.send(SynthesizedAudio(FRAME, text, segment_end=index == frames - 1, words=words))
                sent += 1
            self.tts.spoken.append(sentence)

    async def aclose(self) -> None:
        self.closed = True
        await super().aclose()


def frames_for(sentence: str) -> int:
    return max(2, len(sentence) // 4)


async def speak(tts: TTS, pieces: list[str]) -> list[SynthesizedAudio]:
    """Push ``pieces`` as an LLM would, end the input, and read all the audio."""
    stream = tts.stream()
    for piece in pieces:
        stream.push_text(piece)
        await asyncio.sleep(0.01)
    stream.end_input()
    try:
        return [audio async for audio in stream]
    finally:
        await stream.aclose()


def tokens(text: str) -> list[str]:
    words = text.split(" ")
    return [word + " " for word in words[:-1]] + [words[-1]]


def segments(audio: list[SynthesizedAudio]) -> list[str]:
    return [a.text for a in audio if a.text]


def now() -> float:
    return asyncio.get_running_loop().time()


# -- before the first audio ------------------------------------------------------------------
def test_a_primary_refusing_at_connect_hands_the_whole_reply_to_the_secondary_stream() -> None:
    async def main() -> None:
        primary, secondary = StreamingTTS("primary", fail="connect"), StreamingTTS("secondary")
        tts = FallbackTTS([primary, secondary])
        changes: list[dict[str, Any]] = []
        tts.events.on("availability_changed", changes.append)
        audio = await speak(tts, tokens(REPLY))
        assert segments(audio) == SENTENCES  # each sentence once, from the secondary
        assert len(audio) == sum(frames_for(s) for s in SENTENCES)
        assert secondary.streams[0].received == REPLY  # streamed: the text as it was written
        assert secondary.spoken == SENTENCES and primary.spoken == []
        assert [(c["provider"], c["available"]) for c in changes] == [("tts:primary", False)]
        assert "refused the connection" in changes[0]["error"]
        await tts.aclose()

    run_virtual(main())


def test_text_pushed_before_a_silent_primary_times_out_is_replayed_with_its_flushes() -> None:
    async def main() -> None:
        primary, secondary = StreamingTTS("primary", fail="hang"), StreamingTTS("secondary")
        tts = FallbackTTS([primary, secondary], connect=ConnectOptions(timeout=1.0))
        stream = tts.stream()
        stream.push_text("Hello there. How are")
        stream.flush()  # e.g. before a tool call
        await asyncio.sleep(0.5)
        assert isinstance(stream, FallbackTTSStream) and stream.provider is primary
        stream.push_text(" you today?")
        first = await anext(stream)
        assert now() == pytest.approx(1.0 + 0.05)  # the timeout, counted from the flush; then the ttfb
        assert first.text == "Hello there." and stream.provider is secondary
        stream.push_text(" I am fine.")  # after the switch: straight to the secondary
        stream.end_input()
        rest = [audio async for audio in stream]
        await stream.aclose()
        assert segments([first, *rest]) == ["Hello there.", "How are", "you today?", "I am fine."]
        replayed = secondary.streams[0]
        assert replayed.received == "Hello there. How are you today? I am fine."
        assert replayed.flushes == 1
        assert primary.streams[0].received == "Hello there. How are you today?" and primary.streams[0].closed
        assert not tts.fallback.available(primary)
        await tts.aclose()

    run_virtual(main())


def test_the_timeout_waits_while_the_llm_is_still_writing_the_first_sentence() -> None:
    async def main() -> None:
        slow_llm_words = StreamingTTS("primary", ttfb=0.5)
        tts = FallbackTTS([slow_llm_words, StreamingTTS("secondary")], connect=ConnectOptions(timeout=1.0))
        stream = tts.stream()
        stream.push_text("Well")
        await asyncio.sleep(5.0)  # nothing whole to say yet: the provider is not late
        stream.push_text(", that is a long story. ")
        stream.end_input()
        audio = [a async for a in stream]
        await stream.aclose()
        assert segments(audio) == ["Well, that is a long story."]
        assert tts.fallback.available(slow_llm_words)

    run_virtual(main())


@pytest.mark.parametrize("fault", [Fault.RAISE_AT_START, Fault.GARBAGE, Fault.CLOSE, Fault.HANG])
def test_faults_before_the_first_audio_switch_to_the_secondary(fault: Fault) -> None:
    async def main() -> None:
        primary = FaultyTTS(StreamingTTS(), fault, name="primary")
        secondary = StreamingTTS("secondary")
        tts = FallbackTTS([primary, secondary], connect=ConnectOptions(timeout=1.0))
        audio = await speak(tts, tokens(REPLY))
        assert segments(audio) == SENTENCES
        assert all(isinstance(a.frame, AudioFrame) for a in audio)
        assert not tts.fallback.available(primary)
        await tts.aclose()

    run_virtual(main())


def test_retries_stay_on_the_primary() -> None:
    async def main() -> None:
        primary = StreamingTTS("primary", fail="connect", times=1)
        tts = FallbackTTS([primary, StreamingTTS("secondary")], connect=ConnectOptions(max_retry=1))
        audio = await speak(tts, tokens(REPLY))
        assert segments(audio) == SENTENCES and primary.spoken == SENTENCES
        assert len(primary.streams) == 2 and tts.fallback.available(primary)

    run_virtual(main())


def test_every_stream_failing_is_one_clear_error() -> None:
    async def main() -> None:
        tts = FallbackTTS([StreamingTTS("a", fail="connect"), StreamingTTS("b", fail="connect")])
        with pytest.raises(ProviderError, match="every TTS failed: tts:a: .*refused.*; tts:b: ") as info:
            await speak(tts, ["Hello there."])
        assert info.value.provider == "tts:fallback"
        await tts.aclose()

    run_virtual(main())


def test_a_marked_down_primary_is_skipped_next_time_and_probed_back() -> None:
    async def main() -> None:
        primary = StreamingTTS("primary", fail="connect", times=1)
        secondary = StreamingTTS("secondary")
        tts = FallbackTTS([primary, secondary], connect=ConnectOptions(probe_interval=10.0))
        await speak(tts, ["Hello there."])
        await speak(tts, ["Again."])
        assert len(primary.streams) == 1  # not opened the second time
        assert secondary.spoken == ["Hello there.", "Again."]
        await asyncio.sleep(10.5)
        assert tts.fallback.available(primary)
        await speak(tts, ["Back."])
        assert primary.spoken == ["Back."]
        await tts.aclose()

    run_virtual(main())


# -- after audio -----------------------------------------------------------------------------
def test_a_failure_mid_sentence_after_audio_is_raised_not_switched() -> None:
    async def main() -> None:
        primary = StreamingTTS("primary", fail="after", after_frames=1)
        secondary = StreamingTTS("secondary")
        tts = FallbackTTS([primary, secondary])
        stream = tts.stream()
        stream.push_text(REPLY)
        stream.end_input()
        heard: list[SynthesizedAudio] = []
        with pytest.raises(ProviderError, match="dropped") as info:
            async for audio in stream:
                heard.append(audio)
        await stream.aclose()
        assert info.value.provider == "tts:primary"
        assert segments(heard) == ["Hello there."] and not heard[-1].segment_end
        assert secondary.streams == []  # the listener would have heard "Hello there" twice

    run_virtual(main())


def test_a_failure_between_sentences_switches_for_the_rest_only() -> None:
    async def main() -> None:
        primary = StreamingTTS("primary", fail="after", after_frames=frames_for("Hello there."))
        secondary = StreamingTTS("secondary")
        tts = FallbackTTS([primary, secondary])
        audio = await speak(tts, tokens(REPLY))
        assert segments(audio) == SENTENCES  # nothing twice, nothing missing
        assert primary.spoken == ["Hello there."]
        assert secondary.streams[0].received.strip() == "How are you today? I am fine."
        assert not tts.fallback.available(primary)

    run_virtual(main())


def test_a_sentence_by_sentence_primary_failing_on_its_second_sentence_hands_over_the_rest() -> None:
    async def main() -> None:
        primary = FaultyTTS(FakeTTS(), Fault.RAISE_AT_START, skip=1, name="primary")  # its 2nd synthesis fails
        secondary = FakeTTS()
        tts = FallbackTTS([primary, secondary])
        audio = await speak(tts, tokens(REPLY))
        assert segments(audio) == SENTENCES
        assert secondary.spoken == SENTENCES[1:]

    run_virtual(main())


def test_audio_whose_text_is_unknown_is_never_followed_by_a_switch() -> None:
    class Unlabelled(StreamingTTS):
        def stream(self) -> TTSStream:
            inner = super().stream()
            return _Unlabel(inner)

    class _Unlabel(TTSStream):
        def __init__(self, inner: TTSStream) -> None:
            super().__init__(inner.label)
            self.inner = inner
            self.start_task(self._pump())

        def push_text(self, text: str) -> None:
            self.inner.push_text(text)

        def _on_end_input(self) -> None:
            self.inner.end_input()

        async def _pump(self) -> None:
            async for audio in self.inner:
                self.send(SynthesizedAudio(audio.frame, "", audio.segment_end))

        async def aclose(self) -> None:
            await super().aclose()
            await self.inner.aclose()

    async def main() -> None:
        primary = Unlabelled("primary", fail="after", after_frames=frames_for("Hello there."))
        secondary = StreamingTTS("secondary")
        tts = FallbackTTS([primary, secondary])
        with pytest.raises(ProviderError, match="dropped"):
            await speak(tts, tokens(REPLY))
        assert secondary.streams == []  # what was said is unknown: a replay could repeat it

    run_virtual(main())


def test_segments_words_and_marks_are_relayed_unchanged() -> None:
    async def main() -> None:
        tts = FallbackTTS([StreamingTTS("only")])
        audio = await speak(tts, tokens(REPLY))
        firsts = [a for a in audio if a.text]
        assert [a.words for a in firsts] == [(WordTiming(s.split()[0], 0.0, 0.02),) for s in SENTENCES]
        assert sum(a.segment_end for a in audio) == 3 and audio[-1].segment_end

    run_virtual(main())


# -- closing ---------------------------------------------------------------------------------------
def test_closing_the_fallback_stream_closes_the_provider_stream_and_leaves_no_task() -> None:
    async def main() -> None:
        before = asyncio.all_tasks()
        primary = StreamingTTS("primary", ttfb=0.0)
        tts = FallbackTTS([primary])
        stream = tts.stream()
        stream.push_text(REPLY)
        await anext(stream)
        inner = primary.streams[0]
        assert not inner.closed
        await stream.aclose()
        await asyncio.sleep(0)
        assert inner.closed and asyncio.all_tasks() == before
        with pytest.raises(RuntimeError):
            stream.push_text("more")
        await stream.aclose()  # idempotent

    run_virtual(main())


def test_closing_while_a_secondary_is_being_tried_leaves_no_task() -> None:
    async def main() -> None:
        before = asyncio.all_tasks()
        primary, secondary = StreamingTTS("primary", fail="hang"), StreamingTTS("secondary", fail="hang")
        tts = FallbackTTS([primary, secondary], connect=ConnectOptions(timeout=1.0))
        stream = tts.stream()
        stream.push_text(REPLY)
        await asyncio.sleep(1.5)  # the primary timed out; the secondary hangs too
        assert len(secondary.streams) == 1
        await stream.aclose()
        await tts.aclose()  # the probe of the primary
        await asyncio.sleep(0)
        assert primary.streams[0].closed and secondary.streams[0].closed
        assert asyncio.all_tasks() == before

    run_virtual(main())


# -- the text log -----------------------------------------------------------------------------------
def test_the_log_drops_what_was_spoken_whatever_the_provider_did_to_spacing_and_punctuation() -> None:
    log = TextLog()
    log.push("  Hello, there!  How are")
    log.flush()
    log.push(" you?")
    log.spoken("hello there")
    assert log.text == "  How are you?" and log.flushes == [9]
    log.spoken("How are")
    assert log.text == " you?" and log.flushes == []
    log.spoken("Something else")
    assert not log.tracked and log.text == ""


def test_the_log_replays_its_text_and_flushes_in_order() -> None:
    pushed: list[str] = []

    class Recorder(TTSStream):
        def push_text(self, text: str) -> None:
            pushed.append(text)

        def flush(self) -> None:
            pushed.append("<flush>")

    log = TextLog()
    log.flush()  # nothing before it: a flush of nothing is still replayed
    log.push("One. ")
    log.flush()
    log.flush()
    log.push("Two")
    log.replay(Recorder())
    assert pushed == ["<flush>", "One. ", "<flush>", "Two"]


@pytest.mark.parametrize(
    ("text", "flushed", "ended", "ready"),
    [
        ("Well", False, False, False),  # the provider may wait for the sentence's end
        ("Well", False, True, True),
        ("Well", True, False, True),
        ("Hello there. How", False, False, True),
        ("Pi is 3.14", False, False, False),  # a decimal point ends no sentence
        ("... ", True, True, False),  # nothing to say
    ],
)
def test_the_timeout_counts_once_the_provider_has_something_whole_to_say(
    text: str, flushed: bool, ended: bool, ready: bool
) -> None:
    log = TextLog()
    log.push(text)
    if flushed:
        log.flush()
    assert log.ready(ended) is ready


# -- in a session ----------------------------------------------------------------------------------------
def run_session(tts: FallbackTTS, reply: str = REPLY) -> Conversation:
    pipeline = CascadingPipeline(
        stt=FakeSTT(["hi", "and again"]),
        llm=FakeLLM([reply, "Second answer."]),
        tts=tts,
        vad=FakeVAD(),
        turn_detector=None,
    )
    return Conversation(Agent("Be brief."), pipeline)


def test_a_session_with_a_failing_streaming_primary_says_the_whole_reply_once() -> None:
    async def main() -> None:
        primary = FaultyTTS(StreamingTTS(), Fault.HANG, name="primary")
        backup = FakeTTS()
        tts = FallbackTTS([primary, backup], connect=ConnectOptions(timeout=1.0))
        async with run_session(tts) as conv:
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
        assert conv.agent_turns() == [REPLY, "Second answer."]
        said = [p["text"] for p in conv.named("on_speech_out")]
        assert said == [*SENTENCES, "Second answer."]  # each sentence played once
        assert backup.spoken == said
        expected = sum(len(s) * backup.seconds_per_char for s in said)
        assert conv.agent_audio_seconds() == pytest.approx(expected, abs=0.05)
        assert conv.errors() == []
        assert primary.injected == 1  # marked down: not asked for the second reply
        await tts.aclose()

    run_virtual(main())


def test_a_session_keeps_what_was_heard_when_the_primary_fails_mid_sentence() -> None:
    async def main() -> None:
        primary = StreamingTTS("primary", fail="after", after_frames=frames_for("Hello there.") + 1, times=1)
        secondary = FakeTTS()
        tts = FallbackTTS([primary, secondary])
        async with run_session(tts) as conv:
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
        (turn,) = conv.agent_turns()
        assert turn.startswith("Hello there.") and "I am fine." not in turn
        assert secondary.spoken == []
        (error,) = conv.errors()
        assert error["source"] == "tts:primary" and "dropped" in error["message"]
        await tts.aclose()

    run_virtual(main())


def test_interrupting_the_agent_closes_the_provider_stream() -> None:
    async def main() -> None:
        primary = StreamingTTS("primary")
        tts = FallbackTTS([primary, FakeTTS()])
        long_reply = (
            "First, we check the weather in Paris. Then we look at trains to Lyon. After that, hotels "
            "near the station come up. Prices vary a lot in summer. Booking early helps, of course. "
            "Finally, remember your passport and a good book for the journey."
        )
        async with run_session(tts, long_reply) as conv:
            await conv.user_speaks(0.6)
            await conv.wait_for_state("speaking")
            await conv.silence(0.5)
            await conv.user_speaks(1.0)
            await conv.wait_for(lambda: bool(conv.agent_turns()))
            assert primary.streams[0].closed
        assert conv.named("agent_turn")[0]["interrupted"]
        assert conv.errors() == []

    run_virtual(main())
