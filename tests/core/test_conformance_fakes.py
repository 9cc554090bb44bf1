"""The conformance suites run against the test kit's fakes (and so check the suites)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from vocalis.audio import AudioFrame
from vocalis.testing import FakeEOU, FakeLLM, FakeResponse, FakeSTT, FakeTTS, FakeVAD, tone
from vocalis.testing.conformance import (
    EOUConformance,
    LLMConformance,
    STTConformance,
    TTSConformance,
    VADConformance,
    frames_of,
    word_error_rate,
)


def speech_frames() -> list[AudioFrame]:
    return frames_of(tone(1.0).to_numpy(), 16_000)


class TestFakeSTT(STTConformance):
    @pytest.fixture
    def provider(self) -> FakeSTT:
        # Slow enough that cancelling and closing land mid-recognition.
        return FakeSTT(["turn on the lights"] * 10, final_delay=0.2)

    @pytest.fixture
    def speech(self) -> tuple[list[AudioFrame], str]:
        return speech_frames(), "Turn on the lights."


class TestFakeVAD(VADConformance):
    @pytest.fixture
    def provider(self) -> FakeVAD:
        return FakeVAD()

    @pytest.fixture
    def speech(self) -> tuple[list[AudioFrame], str]:
        return speech_frames(), ""


class TestFakeTTS(TTSConformance):
    @pytest.fixture
    def provider(self) -> FakeTTS:
        return FakeTTS(seconds_per_char=0.02)


class TestFakeLLM(LLMConformance):
    scripted_model = True  # it replies from its script: its recorded requests show what it read

    @pytest.fixture
    def provider(self) -> FakeLLM:
        text = "Hello! Nice to meet you, how can I help you today?"
        return FakeLLM([FakeResponse(text, token_interval=0.02)])

    @pytest.fixture
    def model_input(self, provider: FakeLLM) -> Callable[[], str]:
        return lambda: json.dumps(provider.requests[-1].chat_ctx.to_openai())


class TestFakeEOU(EOUConformance):
    @pytest.fixture
    def provider(self) -> FakeEOU:
        return FakeEOU(0.7)


@pytest.mark.parametrize(
    ("ref", "hyp", "wer"),
    [("Turn on the lights.", "turn on the lights", 0.0), ("a b c d", "a x c", 0.5), ("", "", 0.0), ("", "x", 1.0)],
)
def test_word_error_rate(ref: str, hyp: str, wer: float) -> None:
    assert word_error_rate(ref, hyp) == wer
