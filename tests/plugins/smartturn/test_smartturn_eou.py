"""Smart Turn v3.2 on labelled Piper speech: ranking, padding, rates, loading, concurrency."""

from __future__ import annotations

import asyncio
import json
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from vocalis.audio import AudioFrame, concat, resample
from vocalis.chat import ChatContext, ChatRole
from vocalis.providers.base import ProviderError
from vocalis_smartturn import NO_AUDIO_PROBABILITY, SmartTurnEOU
from vocalis_smartturn import model as smart_model
from vocalis_smartturn.features import WINDOW_SAMPLES, log_mel_features

TURNS = Path(__file__).resolve().parents[2] / "data" / "turns"
HESITATIONS = Path(__file__).resolve().parent / "data"


def read(path: Path) -> AudioFrame:
    with wave.open(str(path)) as wav:
        return AudioFrame(wav.readframes(wav.getnframes()), wav.getframerate(), wav.getnchannels())


def labelled(folder: Path) -> list[tuple[str, AudioFrame, bool]]:
    items = json.loads((folder / "manifest.json").read_text())
    return [(item["file"], read(folder / item["file"]), bool(item["complete"])) for item in items]


@pytest.fixture(scope="module")
def eou() -> SmartTurnEOU:
    provider = SmartTurnEOU()
    provider._load()
    return provider


@pytest.fixture(scope="module")
def turns() -> list[tuple[str, AudioFrame, bool]]:
    return labelled(TURNS)


@pytest.fixture(scope="module")
def hesitations() -> list[tuple[str, AudioFrame, bool]]:
    return labelled(HESITATIONS)


def context() -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(ChatRole.USER, "ignored by an audio model")
    return ctx


async def scores(eou: SmartTurnEOU, items: list[tuple[str, AudioFrame, bool]]) -> list[tuple[bool, float]]:
    return [(label, await eou.predict(context(), audio=audio)) for _, audio, label in items]


def accuracy(scored: list[tuple[bool, float]], threshold: float = 0.5) -> float:
    return float(np.mean([(p >= threshold) == label for label, p in scored]))


def auc(scored: list[tuple[bool, float]]) -> float:
    complete = [p for label, p in scored if label]
    cut = [p for label, p in scored if not label]
    return float(np.mean([a > b for a in complete for b in cut]))


async def test_complete_turns_rank_above_cut_off_ones(eou: SmartTurnEOU, turns: list) -> None:
    scored = await scores(eou, turns)
    complete = np.mean([p for label, p in scored if label])
    cut = np.mean([p for label, p in scored if not label])
    report = f"acc@0.5 {accuracy(scored):.2f} AUC {auc(scored):.2f} mean complete {complete:.3f} cut-off {cut:.3f}"
    print(report)
    # Measured: AUC 0.95, 0.973 vs 0.612, accuracy@0.5 0.67. Piper ends most
    # cut-off texts with sentence-final prosody, so they sound finished; the
    # ranking holds, the 0.5 threshold does not separate them all.
    assert auc(scored) >= 0.8, report
    assert complete - cut >= 0.15, report
    assert all(p >= 0.5 for label, p in scored if label), report


async def test_hesitations_are_judged_incomplete(eou: SmartTurnEOU, turns: list, hesitations: list) -> None:
    complete = [item for item in turns if item[2]]
    scored = await scores(eou, complete + hesitations)
    report = f"acc@0.5 {accuracy(scored):.2f} AUC {auc(scored):.2f}"
    print(report)
    assert accuracy(scored) >= 0.9, report  # measured 1.00 (hesitations ~0.01)
    assert auc(scored) >= 0.95, report


def right_padded_probability(eou: SmartTurnEOU, audio: AudioFrame) -> float:
    from vocalis_smartturn.eou import to_model_audio

    samples = to_model_audio(audio, eou.settings.trailing_silence)
    window = np.concatenate([samples, np.zeros(WINDOW_SAMPLES - len(samples), np.float32)])
    (out,) = eou._load().session.run(None, {"input_features": log_mel_features(window)[None]})
    return float(np.asarray(out).reshape(-1)[0])


async def test_left_padding_matters(eou: SmartTurnEOU, turns: list, hesitations: list) -> None:
    items = turns + hesitations
    left = await scores(eou, items)
    # Inference is CPU work: off the event loop, like the provider does it.
    right = await asyncio.to_thread(lambda: [(label, right_padded_probability(eou, audio)) for _, audio, label in items])
    cut_left = np.mean([p for label, p in left if not label])
    cut_right = np.mean([p for label, p in right if not label])
    # Silence after the speech reads as "they stopped talking": padding at the
    # end pushes unfinished turns towards "complete" (measured 0.31 -> 0.48).
    assert cut_right - cut_left >= 0.1, (cut_left, cut_right)
    assert accuracy(left) > accuracy(right), (accuracy(left), accuracy(right))


async def test_trailing_silence_is_normalised(eou: SmartTurnEOU, turns: list) -> None:
    _, audio, _ = next(item for item in turns if item[0] == "cutoff12.wav")
    longer = concat([audio, AudioFrame.silence(0.5)])
    assert longer is not None
    assert await eou.predict(context(), audio=longer) == pytest.approx(
        await eou.predict(context(), audio=audio), abs=1e-6
    )
    as_given = SmartTurnEOU(trailing_silence=None)
    assert await as_given.predict(context(), audio=longer) > await eou.predict(context(), audio=longer)


async def test_no_audio_is_undecided(eou: SmartTurnEOU) -> None:
    assert await eou.predict(context()) == NO_AUDIO_PROBABILITY == 0.5
    assert await eou.predict(context(), audio=AudioFrame(b"", 16_000)) == 0.5


async def test_short_audio_and_silence(eou: SmartTurnEOU, turns: list) -> None:
    _, audio, _ = turns[0]
    for clip in (audio.slice_from(audio.duration - 0.3), AudioFrame.silence(2.0), AudioFrame.silence(0.01)):
        value = await eou.predict(context(), audio=clip)
        assert isinstance(value, float) and 0.0 <= value <= 1.0


@pytest.mark.parametrize("rate", [8_000, 24_000, 48_000])
async def test_other_rates_are_resampled(eou: SmartTurnEOU, turns: list, hesitations: list, rate: int) -> None:
    for _, audio, label in (turns[1], turns[4], hesitations[0], hesitations[3]):
        native = await eou.predict(context(), audio=audio)
        converted = await eou.predict(context(), audio=resample(audio, rate))
        assert (converted >= 0.5) == label, (rate, native, converted)
        # 8 kHz loses the band above 4 kHz, so allow a wider gap there.
        assert converted == pytest.approx(native, abs=0.25 if rate == 8_000 else 0.05)


async def test_stereo_is_mixed_down(eou: SmartTurnEOU, hesitations: list) -> None:
    _, audio, _ = hesitations[1]
    mono = audio.to_numpy()
    stereo = AudioFrame.from_numpy(np.stack([mono, mono], axis=1), 16_000)
    assert await eou.predict(context(), audio=stereo) == pytest.approx(
        await eou.predict(context(), audio=audio), abs=1e-6
    )


async def test_only_the_last_eight_seconds_count(eou: SmartTurnEOU, turns: list, hesitations: list) -> None:
    _, ending, _ = hesitations[2]
    earlier = concat([item[1] for item in turns[:6]])
    assert earlier is not None and earlier.duration + ending.duration > 10
    long = concat([earlier, ending])
    assert long is not None
    as_given = SmartTurnEOU(trailing_silence=None)  # trimming would shift the window
    expected = await as_given.predict(context(), audio=long.slice_from(long.duration - 8.0))
    assert await as_given.predict(context(), audio=long) == pytest.approx(expected, abs=1e-6)


async def test_runs_off_the_event_loop(eou: SmartTurnEOU, turns: list) -> None:
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.002)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    await eou.predict(context(), audio=turns[0][1])
    elapsed = time.perf_counter() - started
    task.cancel()
    during = [t for t in ticks if t >= started]
    assert len(during) >= 3, (elapsed, len(during))


async def test_concurrent_predictions_agree(eou: SmartTurnEOU, turns: list) -> None:
    audios = [item[1] for item in turns[:4]]
    sequential = [await eou.predict(context(), audio=a) for a in audios]
    concurrent = await asyncio.gather(*(eou.predict(context(), audio=a) for a in audios))
    assert list(concurrent) == pytest.approx(sequential, abs=1e-6)


def test_model_is_loaded_once(eou: SmartTurnEOU) -> None:
    other = SmartTurnEOU(threshold=0.7)
    assert other._load() is eou._load()
    assert smart_model.load() is eou._load()
    assert smart_model.find_model().name == "smart-turn-v3.2-cpu.onnx"


def test_is_complete_uses_the_threshold() -> None:
    eou = SmartTurnEOU(threshold=0.8)
    assert eou.is_complete(0.85) and not eou.is_complete(0.75)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_EOU_SMARTTURN_THRESHOLD", "0.6")
    monkeypatch.setenv("VOCALIS_EOU_SMARTTURN_ONNX_THREADS", "2")
    settings = SmartTurnEOU().settings
    assert settings.threshold == 0.6 and settings.onnx_threads == 2 and settings.model_path is None


async def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    eou = SmartTurnEOU(model_path=str(tmp_path / "missing.onnx"))
    with pytest.raises(ProviderError, match="eou:smartturn.*does not exist") as info:
        await eou.predict(context(), audio=AudioFrame.silence(1.0))
    assert not info.value.recoverable
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not a model")
    with pytest.raises(ProviderError, match="cannot load"):
        await SmartTurnEOU(model_path=str(bogus)).prewarm()


def test_pipecat_is_not_imported() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from vocalis_smartturn import model; model.load(); "
        "import vocalis_smartturn.plugin; print('pipecat' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_registered_as_the_default_eou() -> None:
    from vocalis.plugin.manager import make_plugin_manager

    registry = make_plugin_manager().registry
    assert isinstance(registry.create("eou", "smartturn"), SmartTurnEOU)
