"""The core's EOU conformance suite against Smart Turn."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from vocalis.audio import AudioFrame
from vocalis.testing.conformance import EOUConformance
from vocalis_smartturn import SmartTurnEOU

TURNS = Path(__file__).resolve().parents[2] / "data" / "turns"


class TestSmartTurnConformance(EOUConformance):
    @pytest.fixture
    def provider(self) -> SmartTurnEOU:
        return SmartTurnEOU()

    @pytest.fixture
    def complete_audio(self) -> AudioFrame:
        with wave.open(str(TURNS / "complete03.wav")) as wav:
            return AudioFrame(wav.readframes(wav.getnframes()), wav.getframerate())
