"""The core's VAD conformance suite against Silero VAD (both runtimes)."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from vocalis.audio import AudioFrame
from vocalis.testing.conformance import VADConformance, frames_of
from vocalis_silero import SileroVAD, models

ONNX = pytest.param(
    "onnx",
    marks=pytest.mark.skipif(models.find_onnx_model() is None, reason="no Silero ONNX file installed"),
)
SPEECH = Path(__file__).resolve().parents[2] / "data" / "speech"


class TestSileroVADConformance(VADConformance):
    @pytest.fixture(params=[ONNX, "ggml"])
    def provider(self, request: pytest.FixtureRequest) -> SileroVAD:
        return SileroVAD(backend=request.param)

    @pytest.fixture
    def speech(self) -> tuple[list[AudioFrame], str]:
        item = json.loads((SPEECH / "manifest.json").read_text())[0]
        with wave.open(str(SPEECH / item["file"])) as wav:
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        return frames_of(samples, 16_000), item["text"]
