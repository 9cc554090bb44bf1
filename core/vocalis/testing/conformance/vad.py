"""The VAD conformance suite: speech starts then ends, silence never starts, close."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vocalis.audio import AudioFrame
from vocalis.providers.vad import VADEventType
from vocalis.testing.conformance.base import ProviderConformance
from vocalis.testing.conformance.support import (
    StreamOutputs,
    drain,
    frames_of,
    push_after_close,
    run,
    silence,
    until_idle,
)


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
        """Closing with audio still to score: nothing is sent after, all work stops,
        and audio pushed after close is ignored."""
        modules = self._modules(provider)
        frames = silence(0.3) + speech[0] + silence(1.0)

        async def go() -> None:
            before = asyncio.all_tasks()
            stream = provider.stream()
            outputs = StreamOutputs(stream)
            for frame in frames[:10]:
                stream.push_frame(frame)
            stream.push_frame(AudioFrame(b"".join(f.data for f in frames[10:]), 16_000))  # a backlog
            await asyncio.sleep(0)
            await asyncio.wait_for(stream.aclose(), self.stop_seconds)
            outputs.closed = True
            await drain(stream)

            def more() -> None:
                for frame in frames:
                    stream.push_frame(frame)

            push_after_close(more)
            await until_idle(modules, before, self.stop_seconds, "closed VAD stream")
            outputs.check("the VAD stream")
            await stream.aclose()

        run(go())
