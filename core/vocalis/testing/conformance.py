"""Conformance suites: the contract every provider plugin must keep.

Subclass the suite of your kind in a test module and give it a ``provider``
fixture; pytest then runs every check against your provider::

    from vocalis.testing.conformance import TTSConformance

    class TestMyTTS(TTSConformance):
        @pytest.fixture
        def provider(self):
            return MyTTS()  # cheap if the model is cached per process

The checks are real-time (``asyncio.run``), since real models run in threads.
They cover streaming order, cancellation mid-stream, close, bad input and the
settings prefix. Requires pytest.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Coroutine
from typing import Any, ClassVar, TypeVar

import pytest

from vocalis.audio import AudioFrame
from vocalis.chat import ChatContext, ChatRole
from vocalis.providers.base import Provider, ProviderError
from vocalis.providers.stt import SpeechEventType
from vocalis.providers.vad import VADEventType
from vocalis.settings import provider_env_prefix

T = TypeVar("T")

SECRET = "sk-conformance-secret-0123456789"


def run(coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
    """Run a coroutine to completion with a deadline; fail on leaked tasks."""

    async def guarded() -> T:
        before = asyncio.all_tasks()
        result = await asyncio.wait_for(coro, timeout)
        await asyncio.sleep(0.05)  # let cancelled work settle
        leaked = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()]
        assert not leaked, f"tasks left running: {leaked}"
        return result

    return asyncio.run(guarded())


def frames_of(samples: Any, sample_rate: int, frame_seconds: float = 0.02) -> list[AudioFrame]:
    """Cut an int16 array into frames."""
    import numpy as np

    data = np.asarray(samples, dtype=np.int16)
    step = max(1, int(sample_rate * frame_seconds))
    return [AudioFrame(data[i : i + step].tobytes(), sample_rate) for i in range(0, len(data), step) if len(data[i : i + step])]


def silence(seconds: float, sample_rate: int = 16_000) -> list[AudioFrame]:
    """Frames of digital silence."""
    return frames_of([0] * int(seconds * sample_rate), sample_rate)


class ProviderConformance:
    """Checks every provider kind shares. Override the ``provider`` fixture."""

    @pytest.fixture
    def provider(self) -> Provider:
        raise NotImplementedError("override the `provider` fixture with an instance of your provider")

    def test_settings_use_the_provider_prefix(self, provider: Provider) -> None:
        expected = provider_env_prefix(provider.kind.value, provider.name)
        assert provider.Settings.model_config.get("env_prefix") == expected, (
            f"{type(provider).__name__}.Settings must use env prefix {expected!r}"
        )

    def test_repr_and_label(self, provider: Provider) -> None:
        assert provider.label == f"{provider.kind.value}:{provider.name}"
        assert type(provider).__name__ in repr(provider)

    def test_secret_settings_are_masked(self, provider: Provider) -> None:
        from pydantic import SecretStr

        secret_fields = [n for n, f in provider.Settings.model_fields.items() if f.annotation in (SecretStr, SecretStr | None)]
        for field in secret_fields:
            settings = provider.settings.model_copy(update={field: SecretStr(SECRET)})
            assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())

    def test_aclose_is_idempotent(self, provider: Provider) -> None:
        fresh = type(provider)(settings=provider.settings)

        async def close_twice() -> None:
            await fresh.aclose()
            await fresh.aclose()

        run(close_twice())


class STTConformance(ProviderConformance):
    """For STT providers. Also override ``speech``: ``(frames, expected_text)``."""

    max_wer: ClassVar[float] = 0.5

    @pytest.fixture
    def speech(self) -> tuple[list[AudioFrame], str]:
        raise NotImplementedError("override `speech` with (frames at 16 kHz, expected text)")

    def test_recognize_speech(self, provider: Any, speech: tuple[list[AudioFrame], str]) -> None:
        frames, expected = speech
        event = run(provider.recognize(frames))
        assert event.type is SpeechEventType.FINAL_TRANSCRIPT
        assert word_error_rate(expected, event.text) <= self.max_wer, event.text

    def test_silence_gives_no_words(self, provider: Any) -> None:
        event = run(provider.recognize(silence(1.5)))
        assert len(event.text.split()) <= 1

    def test_empty_input(self, provider: Any) -> None:
        event = run(provider.recognize([]))
        assert event.text == ""

    def test_other_sample_rate(self, provider: Any, speech: tuple[list[AudioFrame], str]) -> None:
        from vocalis.audio import concat, resample

        frames, expected = speech
        joined = concat(frames)
        assert joined is not None
        at_48k = resample(joined, 48_000)
        try:
            event = run(provider.recognize(frames_of(at_48k.to_numpy(), 48_000)))
        except ProviderError:
            return  # refusing with a clear, labelled error is acceptable
        assert word_error_rate(expected, event.text) <= self.max_wer

    def test_stream_order_and_cancel(self, provider: Any, speech: tuple[list[AudioFrame], str]) -> None:
        if not provider.streaming:
            pytest.skip("non-streaming STT: the pipeline segments it with its VAD")
        frames, _ = speech

        async def stream_all() -> list[Any]:
            stream = provider.stream()
            for frame in frames:
                stream.push_frame(frame)
                await asyncio.sleep(0)
            stream.flush()
            stream.end_input()
            events = [event async for event in stream]
            await stream.aclose()
            return events

        events = run(stream_all())
        finals = [i for i, e in enumerate(events) if e.type is SpeechEventType.FINAL_TRANSCRIPT]
        assert finals, "a stream must give a final transcript"
        interims = [i for i, e in enumerate(events) if e.type is SpeechEventType.INTERIM_TRANSCRIPT]
        assert all(i < finals[-1] for i in interims)

        async def cancel_midway() -> None:
            stream = provider.stream()
            for frame in frames[: len(frames) // 2]:
                stream.push_frame(frame)
            await stream.aclose()

        run(cancel_midway())


class VADConformance(ProviderConformance):
    """For VAD providers. Also override ``speech`` (frames with speech in them)."""

    @pytest.fixture
    def speech(self) -> tuple[list[AudioFrame], str]:
        raise NotImplementedError("override `speech` with (frames at 16 kHz, text)")

    def _events(self, provider: Any, frames: list[AudioFrame]) -> list[Any]:
        async def go() -> list[Any]:
            stream = provider.stream()
            for frame in frames:
                stream.push_frame(frame)
            stream.end_input()
            events = [e async for e in stream]
            await stream.aclose()
            return events

        return run(go())

    def test_speech_starts_then_ends(self, provider: Any, speech: tuple[list[AudioFrame], str]) -> None:
        frames = silence(0.5) + speech[0] + silence(1.5)
        kinds = [e.type for e in self._events(provider, frames) if e.type is not VADEventType.INFERENCE]
        assert kinds[:1] == [VADEventType.START_OF_SPEECH] and kinds[-1] is VADEventType.END_OF_SPEECH
        assert all(a is not b for a, b in zip(kinds, kinds[1:], strict=False)), "starts and ends must alternate"

    def test_silence_never_starts(self, provider: Any) -> None:
        events = self._events(provider, silence(2.0))
        assert not [e for e in events if e.type is VADEventType.START_OF_SPEECH]

    def test_odd_frame_sizes(self, provider: Any, speech: tuple[list[AudioFrame], str]) -> None:
        from vocalis.audio import concat

        joined = concat(silence(0.5) + speech[0] + silence(1.5))
        assert joined is not None
        odd = frames_of(joined.to_numpy(), 16_000, frame_seconds=0.0137)
        kinds = [e.type for e in self._events(provider, odd) if e.type is not VADEventType.INFERENCE]
        assert VADEventType.START_OF_SPEECH in kinds and kinds[-1] is VADEventType.END_OF_SPEECH

    def test_close_midway(self, provider: Any, speech: tuple[list[AudioFrame], str]) -> None:
        async def go() -> None:
            stream = provider.stream()
            for frame in speech[0][:10]:
                stream.push_frame(frame)
            await stream.aclose()
            await stream.aclose()

        run(go())


class TTSConformance(ProviderConformance):
    """For TTS providers."""

    def test_synthesize_gives_audio(self, provider: Any) -> None:
        async def go() -> list[AudioFrame]:
            return [frame async for frame in provider.synthesize("Hello there. How are you today?")]

        frames = run(go())
        assert frames and all(f.sample_rate == frames[0].sample_rate for f in frames)
        assert 0.5 < sum(f.duration for f in frames) < 10

    def test_unspeakable_text(self, provider: Any) -> None:
        async def go(text: str) -> float:
            return sum([f.duration async for f in provider.synthesize(text)])

        assert run(go("")) == 0 and run(go("   ")) == 0
        run(go("\x00\x07 ✓ … \u200b"))  # must not crash

    def test_stream_order(self, provider: Any) -> None:
        async def go() -> list[Any]:
            stream = provider.stream()
            for token in ["First ", "sentence", " here.", " Second ", "one", " now."]:
                stream.push_text(token)
            stream.end_input()
            out = [audio async for audio in stream]
            await stream.aclose()
            return out

        out = run(go())
        texts = [a.text for a in out if a.text]
        assert texts == ["First sentence here.", "Second one now."]
        assert out[0].text == "First sentence here." and out[-1].segment_end

    def test_cancel_midway(self, provider: Any) -> None:
        async def go() -> float:
            stream = provider.stream()
            stream.push_text("This is a long sentence that will be cut off. " * 4)
            stream.end_input()
            async for _ in stream:
                break
            started = time.perf_counter()
            await stream.aclose()
            return time.perf_counter() - started

        assert run(go()) < 5.0


class LLMConformance(ProviderConformance):
    """For LLM providers."""

    def _context(self, question: str) -> ChatContext:
        ctx = ChatContext()
        ctx.add_message(ChatRole.SYSTEM, "You are a helpful assistant. Answer in one short sentence.")
        ctx.add_message(ChatRole.USER, question)
        return ctx

    def test_streams_an_answer(self, provider: Any) -> None:
        async def go() -> list[Any]:
            return [chunk async for chunk in provider.chat(self._context("Say hello."))]

        chunks = run(go())
        assert "".join(c.text for c in chunks).strip()

    def test_close_midway(self, provider: Any) -> None:
        async def go() -> float:
            stream = provider.chat(self._context("Count from one to fifty in words."))
            async for _ in stream:
                break
            started = time.perf_counter()
            await stream.aclose()
            return time.perf_counter() - started

        assert run(go()) < 2.0

    def test_tool_history_is_accepted(self, provider: Any) -> None:
        ctx = self._context("What is the weather in Paris?")
        ctx.add_function_call("call_1", "get_weather", '{"city": "Paris"}')
        ctx.add_function_output("call_1", "get_weather", "sunny, 21 degrees")

        async def go() -> str:
            return "".join([c.text async for c in provider.chat(ctx)])

        assert isinstance(run(go()), str)


class EOUConformance(ProviderConformance):
    """For turn detectors. Audio models also override ``complete_audio``."""

    @pytest.fixture
    def complete_audio(self) -> AudioFrame | None:
        return None

    def test_probability_in_range(self, provider: Any, complete_audio: AudioFrame | None) -> None:
        ctx = ChatContext()
        ctx.add_message(ChatRole.USER, "What time is it?")
        value = run(provider.predict(ctx, audio=complete_audio))
        assert isinstance(value, float) and 0.0 <= value <= 1.0 and not math.isnan(value)

    def test_bad_audio(self, provider: Any) -> None:
        ctx = ChatContext()
        ctx.add_message(ChatRole.USER, "Hello")
        for audio in (None, AudioFrame(b"", 16_000), AudioFrame.silence(0.3, 8_000)):
            try:
                value = run(provider.predict(ctx, audio=audio))
            except ProviderError:
                continue
            assert 0.0 <= value <= 1.0


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level edit distance over the reference length (punctuation and case ignored)."""
    import re

    def words(text: str) -> list[str]:
        return re.sub(r"[^\w\s']", " ", text.lower()).split()

    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1] / len(ref)
