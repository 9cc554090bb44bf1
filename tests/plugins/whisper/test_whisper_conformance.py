"""The core's STT conformance suite against the Whisper provider."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from vocalis.audio import AudioFrame
from vocalis.testing.conformance import STTConformance, frames_of
from vocalis_whisper import WhisperSTT

SPEECH = Path(__file__).resolve().parents[2] / "data" / "speech"


class TestWhisperSTTConformance(STTConformance):
    max_wer = 0.15

    @pytest.fixture
    def provider(self) -> WhisperSTT:
        return WhisperSTT()

    @pytest.fixture
    def speech(self) -> tuple[list[AudioFrame], str]:
        item = json.loads((SPEECH / "manifest.json").read_text())[0]
        with wave.open(str(SPEECH / item["file"])) as wav:
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        return frames_of(samples, 16_000), item["text"]
