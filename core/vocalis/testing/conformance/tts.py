"""The TTS conformance suite: audio out, unspeakable text, stream order, close and cancel."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, ClassVar

from vocalis.audio import AudioFrame
from vocalis.testing.conformance.base import ProviderConformance
from vocalis.testing.conformance.support import StreamOutputs, drain, push_after_close, run, until_idle


class TTSConformance(ProviderConformance):
    """For TTS providers."""

    long_text: ClassVar[str] = "This is a long sentence that will be cut off. " * 4

    def test_synthesize_gives_audio(self, provider: Any) -> None:
        async def go() -> list[AudioFrame]:
            return [frame async for frame in provider.synthesize("Hello there. How are you today?")]

        frames = run(go())
        assert frames and all(f.sample_rate == frames[0].sample_rate for f in frames)
        assert 0.5 < sum(f.duration for f in frames) < 10

    def test_unspeakable_text(self, provider: Any) -> None:
        async def go(text: str) -> float:
            return float(sum([f.duration async for f in provider.synthesize(text)]))

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
        """Closing a stream after its first audio: prompt, nothing sent after, all work stops."""
        modules = self._modules(provider)

        async def go() -> float:
            before = asyncio.all_tasks()
            stream = provider.stream()
            outputs = StreamOutputs(stream)
            stream.push_text(self.long_text)
            stream.end_input()
            async for _ in stream:
                break
            started = time.perf_counter()
            await asyncio.wait_for(stream.aclose(), self.stop_seconds)
            took = time.perf_counter() - started
            outputs.closed = True
            await drain(stream)
            push_after_close(lambda: stream.push_text("More text to speak."))
            await until_idle(modules, before, self.stop_seconds, "closed TTS stream")
            outputs.check("the TTS stream")
            return took

        assert run(go()) < 5.0

    def test_synthesis_stops_when_closed_or_cancelled(self, provider: Any) -> None:
        """synthesize(): closing the iterator or cancelling its reader ends the work;
        a cancelled reader gets no frame after the cancellation."""
        modules = self._modules(provider)

        async def go() -> None:
            before = asyncio.all_tasks()
            frames = provider.synthesize(self.long_text)
            await frames.__anext__()
            await asyncio.wait_for(frames.aclose(), self.stop_seconds)
            await until_idle(modules, before, self.stop_seconds, "closed synthesize()")

            got: list[AudioFrame] = []
            first = asyncio.Event()

            async def read() -> None:
                async with contextlib.aclosing(provider.synthesize(self.long_text)) as stream:
                    async for frame in stream:
                        got.append(frame)
                        first.set()

            reader = asyncio.create_task(read())
            await asyncio.wait_for(first.wait(), 60)
            at_cancel = len(got)
            requested = reader.cancel()
            await asyncio.wait([reader], timeout=self.stop_seconds)
            assert reader.done(), "synthesize() went on after its reader was cancelled"
            assert len(got) == at_cancel, f"{len(got) - at_cancel} frame(s) came after the cancellation"
            if requested:
                assert reader.cancelled(), "synthesize() swallowed the cancellation"
            await until_idle(modules, before, self.stop_seconds, "cancelled synthesize()")

        run(go())
