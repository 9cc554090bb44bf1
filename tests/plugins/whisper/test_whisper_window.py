"""Whisper on a window fitted to the audio (``window="fit"``): accuracy, speed, loops, noise, default.

Runs the real bundled tiny.en on the Piper speech clips, like test_whisper_stt.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import numpy as np
import pytest
from faster_whisper import WhisperModel
from test_whisper_stt import SPEECH, chunked, edit_distance, read_frames, words

from vocalis.audio import AudioFrame
from vocalis_whisper import WhisperSTT
from vocalis_whisper import decode as whisper_decode
from vocalis_whisper import stt as whisper_stt
from vocalis_whisper.decode import Cancelled, DecodeOptions, frames_to_float, transcribe
from vocalis_whisper.window import fit_window_frames, looks_looped, repeats_phrase, token_budget

MAX_FIT_WER = 0.05


def options(window: str = "fit", **changes: Any) -> DecodeOptions:
    values: dict[str, Any] = {
        "language": "en",
        "beam_size": 5,
        "temperatures": (0.0, 0.2, 0.4),
        "initial_prompt": None,
        "vad_filter": False,
        "no_speech_threshold": 0.6,
        "phantom_no_speech": 0.2,
        "silence_dbfs": -60.0,
        "window": window,
    }
    return DecodeOptions(**{**values, **changes})


@pytest.fixture(scope="module")
def corpus() -> list[tuple[list[AudioFrame], str]]:
    manifest = json.loads((SPEECH / "manifest.json").read_text())
    return [(read_frames(SPEECH / item["file"]), item["text"]) for item in manifest]


@pytest.fixture(scope="module")
def fit() -> WhisperSTT:
    provider = WhisperSTT(window="fit")
    asyncio.run(provider.prewarm())
    return provider


@pytest.fixture(scope="module")
def model(fit: WhisperSTT) -> WhisperModel:
    """The shared model, for decodes called directly (off any event loop)."""
    return asyncio.run(fit._model()).model


@pytest.fixture
def fitted_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Window lengths (mel frames) of every fitted decode started."""
    calls: list[int] = []
    real = whisper_decode.decode_fitted

    def spy(model, audio, frames, kwargs):  # type: ignore[no-untyped-def]
        calls.append(frames)
        return real(model, audio, frames, kwargs)

    monkeypatch.setattr(whisper_decode, "decode_fitted", spy)
    return calls


def test_window_rule() -> None:
    # min(30 s, max(audio + 8 s, 10 s)), in 10 ms mel frames; None means the full window.
    assert fit_window_frames(0.3) == 1000
    assert fit_window_frames(2.0) == 1000
    assert fit_window_frames(2.5) == 1050
    assert fit_window_frames(8.31) == 1632
    assert fit_window_frames(21.9) == 2990
    assert fit_window_frames(22.0) is None
    assert fit_window_frames(45.0) is None
    assert all(fit_window_frames(s / 10) % 2 == 0 for s in range(0, 219))
    assert token_budget(2.0) == 19 and token_budget(21.9) <= 200


def test_loop_detector() -> None:
    # Real tiny.en output on windows with only 1 s after the speech.
    for looped in (
        "What's the weather like in Boston today? What's",
        "Turn off the lights in the living room. Turn",
        "Is it going to rain this weekend? Is it",
        "I was wondering if you could. I was wondering if you",
        "No Thanks No Thanks No Thanks No Thanks",
        "Please send the report to my manager. Please send the report",
    ):
        assert repeats_phrase(looped), looped
        assert looks_looped(looped, 12, 3.0)
    for fine in (
        "What's the weather like in Boston today?",
        "Can you book a table for two at seven tonight?",
        "Yes. I would like that.",
        "My phone number is 555.",
        "Hello! What can you help me with today?",
        "The printer is jammed again. Please open a support ticket.",
    ):
        assert not repeats_phrase(fine), fine
        assert not looks_looped(fine, 12, 3.0)
    # More than 7 tokens per second (plus slack) is a loop whatever the words.
    assert not looks_looped("Play some music.", 25, 3.0)
    assert looks_looped("Play some music.", 26, 3.0)


async def test_default_window_is_full(
    monkeypatch: pytest.MonkeyPatch, corpus: list[tuple[list[AudioFrame], str]], fitted_calls: list[int]
) -> None:
    assert WhisperSTT().settings.window == "full"  # type: ignore[attr-defined]
    assert options(window="full") == DecodeOptions("en", 5, (0.0, 0.2, 0.4), None, False, 0.6, 0.2, -60.0)
    frames, text = corpus[0]
    event = await WhisperSTT().recognize(frames)
    assert words(event.text) == words(text)
    assert fitted_calls == []


async def test_window_setting_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, corpus: list[tuple[list[AudioFrame], str]], fitted_calls: list[int]
) -> None:
    monkeypatch.setenv("VOCALIS_STT_WHISPER_WINDOW", "fit")
    provider = WhisperSTT()
    assert provider.settings.window == "fit"  # type: ignore[attr-defined]
    seen: list[str] = []
    real = whisper_stt.transcribe

    def spy(model, audio, decode_options, cancel=None):  # type: ignore[no-untyped-def]
        seen.append(decode_options.window)
        return real(model, audio, decode_options, cancel)

    monkeypatch.setattr(whisper_stt, "transcribe", spy)
    frames, _ = corpus[0]
    await provider.recognize(frames)
    await provider.recognize_interim(frames)
    assert seen == ["fit", "fit"] and len(fitted_calls) == 2
    with pytest.raises(ValueError, match="window"):
        WhisperSTT(window="short")


def test_fit_word_error_rate_on_shorter_windows(
    model: WhisperModel, corpus: list[tuple[list[AudioFrame], str]], fitted_calls: list[int]
) -> None:
    """The speed-up itself is measured in the README's table, not here: time is not a test's to judge."""
    errors = total = 0
    for frames, text in corpus:
        audio = frames_to_float(frames)
        results = {window: transcribe(model, audio, options(window)) for window in ("full", "fit")}
        result = results["fit"]
        assert result.text == result.text.strip() and result.text
        assert 0.5 < result.confidence <= 1.0 and result.language == "en"
        assert result.end_time <= len(audio) / 16_000
        errors += edit_distance(words(text), words(result.text))
        total += len(words(text))
        assert edit_distance(words(results["full"].text), words(result.text)) <= 2, (results, text)
    # Every clip decoded on its fitted window, and none needed the full-window retry.
    assert len(fitted_calls) == len(corpus) and all(frames < 3000 for frames in fitted_calls)
    wer = errors / total
    assert wer <= MAX_FIT_WER, f"window=fit WER {wer:.1%} ({errors}/{total})"


async def test_provider_with_fit_window(fit: WhisperSTT, corpus: list[tuple[list[AudioFrame], str]]) -> None:
    frames, text = corpus[1]
    final, interim = await fit.recognize(frames), await fit.recognize_interim(frames)
    assert words(final.text) == words(text)
    assert edit_distance(words(text), words(interim.text)) <= 1


def test_looped_short_window_is_decoded_again_on_the_full_window(
    model: WhisperModel, corpus: list[tuple[list[AudioFrame], str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    frames, text = corpus[0]
    audio = frames_to_float(frames)
    full = transcribe(model, audio, options("full"))
    # 1 s after the speech instead of 8: tiny.en restarts the sentence.
    monkeypatch.setattr(whisper_decode, "fit_window_frames", lambda seconds: int(seconds * 100) // 2 * 2 + 100)
    verdicts: list[tuple[str, bool]] = []

    def spy(looped_text: str, tokens: int, duration: float) -> bool:
        verdicts.append((looped_text, looks_looped(looped_text, tokens, duration)))
        return verdicts[-1][1]

    monkeypatch.setattr(whisper_decode, "looks_looped", spy)
    result = transcribe(model, audio, options("fit"))
    assert verdicts and verdicts[0][1], verdicts  # the short window did loop, and it was caught
    assert len(words(verdicts[0][0])) > len(words(text))
    assert result.text == full.text and words(result.text) == words(text)


async def test_noise_and_silence_give_no_text(fit: WhisperSTT) -> None:
    for level in (0.003, 0.05, 0.3):
        noise = np.random.default_rng(7).standard_normal(24_000) * level
        event = await fit.recognize(chunked(AudioFrame.from_numpy(noise, 16_000)))
        assert len(event.text.split()) <= 1, (level, event.text)
    ungated = WhisperSTT(window="fit", silence_dbfs=-200.0)
    for seconds in (0.5, 1.5, 4.0):
        assert (await ungated.recognize([AudioFrame.silence(seconds)])).text == ""


def test_full_window_is_used_where_fit_does_not_apply(
    model: WhisperModel, corpus: list[tuple[list[AudioFrame], str]], fitted_calls: list[int]
) -> None:
    frames, text = corpus[2]
    audio = frames_to_float(frames)
    # faster-whisper's VAD cuts the audio itself, so the window cannot be fitted beforehand.
    assert words(transcribe(model, audio, options(vad_filter=True)).text) == words(text)
    assert fitted_calls == []
    # language=None on an English-only model still decodes on the fitted window.
    result = transcribe(model, audio, options(language=None))
    assert result.language == "en" and words(result.text) == words(text)
    assert len(fitted_calls) == 1


def test_cancel_stops_a_fitted_decode(model: WhisperModel, corpus: list[tuple[list[AudioFrame], str]]) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        transcribe(model, frames_to_float(corpus[0][0]), options(), cancel)
