"""The numpy Whisper log-mel front end against pipecat's reference implementation."""

from __future__ import annotations

import importlib.util
import wave
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from vocalis_smartturn import features

TURNS = Path(__file__).resolve().parents[2] / "data" / "turns"


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    """pipecat's vendored WhisperFeatureExtractor, loaded by path (it imports only numpy)."""
    spec = importlib.util.find_spec("pipecat")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "audio/turn/smart_turn/_whisper_features.py"
    module_spec = importlib.util.spec_from_file_location("_smartturn_reference_features", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def speech() -> np.ndarray:
    with wave.open(str(TURNS / "complete01.wav")) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), np.int16).astype(np.float32) / 32768


def inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "speech, left-padded": features.fit_window(speech()),
        "white noise, full window": (rng.standard_normal(features.WINDOW_SAMPLES) * 0.05).astype(np.float32),
        "quiet tone": features.fit_window(0.001 * np.sin(np.arange(40_000) * 0.3).astype(np.float32)),
        "digital silence": np.zeros(features.WINDOW_SAMPLES, np.float32),
    }


@pytest.mark.parametrize("name", list(inputs()))
def test_matches_the_reference(reference: ModuleType, name: str) -> None:
    window = inputs()[name]
    ours = features.log_mel_features(window)
    theirs = reference.compute_whisper_log_mel_features(window, do_normalize=True)
    assert ours.shape == theirs.shape == (80, 800) and ours.dtype == np.float32
    assert float(np.abs(ours - theirs).max()) < 1e-3


def test_without_normalisation_matches_too(reference: ModuleType) -> None:
    window = features.fit_window(speech())
    ours = features.log_mel_features(window, normalize=False)
    theirs = reference.compute_whisper_log_mel_features(window, do_normalize=False)
    assert float(np.abs(ours - theirs).max()) < 1e-3


def test_mel_filterbank(reference: ModuleType) -> None:
    bank = features.mel_filters()
    assert bank.shape == (80, 201)
    np.testing.assert_allclose(bank, reference._MEL_FILTERS.T, atol=1e-12)
    assert (bank >= 0).all() and (bank.sum(axis=1) > 0).all()


def test_features_are_in_whisper_range() -> None:
    out = features.log_mel_features(features.fit_window(speech()))
    # log10 clamped to 8 decades below the peak, then (x + 4) / 4.
    assert out.max() - out.min() <= 2.0 + 1e-6
    assert out.min() > -1.5 and out.max() < 2.5


def test_fit_window_pads_at_the_start_and_keeps_the_end() -> None:
    short = np.ones(16_000, np.float32)
    window = features.fit_window(short)
    assert window.shape == (features.WINDOW_SAMPLES,)
    assert not window[:-16_000].any() and window[-16_000:].all()
    long = np.arange(10 * 16_000, dtype=np.float32)
    np.testing.assert_array_equal(features.fit_window(long), long[-features.WINDOW_SAMPLES :])


def test_wrong_window_length_is_rejected() -> None:
    with pytest.raises(ValueError, match="128000"):
        features.log_mel_features(np.zeros(1000, np.float32))


def test_trim_trailing_silence() -> None:
    tone = 0.3 * np.sin(np.arange(16_000) * 0.2).astype(np.float32)
    audio = np.concatenate([np.zeros(8_000, np.float32), tone, np.zeros(16_000, np.float32)])
    trimmed = features.trim_trailing_silence(audio, 0.2)
    assert len(trimmed) == pytest.approx(8_000 + 16_000 + 3_200, abs=160)
    assert len(features.trim_trailing_silence(audio, 5.0)) == len(audio)
    silence = np.zeros(16_000, np.float32)
    assert len(features.trim_trailing_silence(silence, 0.2)) == len(silence)
