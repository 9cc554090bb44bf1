"""The example plugin against the conformance suites of its two kinds."""

from __future__ import annotations

import asyncio

import pytest

from vocalis.audio import AudioFrame
from vocalis.testing.conformance import STTConformance, TTSConformance
from vocalis_example import ExampleSTT, ExampleTTS

SENTENCE = "The quick brown fox jumps over the lazy dog."


class TestExampleTTS(TTSConformance):
    @pytest.fixture
    def provider(self) -> ExampleTTS:
        return ExampleTTS()


class TestExampleSTT(STTConformance):
    @pytest.fixture
    def provider(self) -> ExampleSTT:
        return ExampleSTT()

    @pytest.fixture
    def speech(self) -> tuple[list[AudioFrame], str]:
        """The suite's speech: frames at 16 kHz and the text they say."""

        async def speak() -> list[AudioFrame]:
            return [frame async for frame in ExampleTTS().synthesize(SENTENCE)]

        return asyncio.run(speak()), SENTENCE
