"""Silero VAD on real (Piper) speech: boundaries, timing, frame sizes, rates, streams."""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path

import numpy as np
import pytest
import soxr

from vocalis.audio import AudioFrame
from vocalis.providers.base import ProviderError
from vocalis.providers.vad import VADEvent, VADEventType
from vocalis_silero import SileroVAD, models

SPEECH = Path(__file__).resolve().parents[2] / "data" / "speech"
PAD = 1.0  # seconds of silence added before and after each clip
START, END = VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as wav:
        assert wav.getframerate() == 16_000 and wav.getnchannels() == 1
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)


def speech_bounds(samples: np.ndarray, rate: int = 16_000) -> tuple[float, float]:
    """Where the clip's speech really starts and ends (20 ms RMS above -50 dBFS)."""
    hop, size = rate // 100, rate // 50
    rms = np.array(
        [np.sqrt(np.mean(samples[i : i + size].astype(np.float64) ** 2)) for i in range(0, len(samples) - size, hop)]
    )
    loud = np.nonzero(rms > 32768 * 10 ** (-50 / 20))[0]
    return loud[0] * hop / rate, (loud[-1] * hop + size) / rate


@pytest.fixture(scope="module")
def clips() -> list[tuple[str, np.ndarray, float, float]]:
    """(name, padded samples, real start, real end) for every manifest clip."""
    manifest = json.loads((SPEECH / "manifest.json").read_text())
    pad = np.zeros(int(PAD * 16_000), np.int16)
    out = []
    for item in manifest:
        samples = read_wav(SPEECH / item["file"])
        start, end = speech_bounds(samples)
        out.append((item["file"], np.concatenate([pad, samples, pad]), PAD + start, PAD + end))
    return out


# The ONNX file comes with faster-whisper or pipecat-ai, which the plugin alone
# does not install (tox's plugin-silero env): the ggml runtime is always there.
ONNX = pytest.param(
    "onnx",
    marks=pytest.mark.skipif(models.find_onnx_model() is None, reason="no Silero ONNX file installed"),
)


@pytest.fixture(scope="module", params=[ONNX, "ggml"])
def vad(request: pytest.FixtureRequest) -> SileroVAD:
    provider = SileroVAD(backend=request.param)
    provider._load()
    return provider


def frames(samples: np.ndarray, rate: int, seconds: float) -> list[AudioFrame]:
    step = max(1, round(rate * seconds))
    return [AudioFrame(samples[i : i + step].tobytes(), rate) for i in range(0, len(samples), step)]


async def detect(vad: SileroVAD, chunks: list[AudioFrame], *, end: bool = True) -> list[VADEvent]:
    stream = vad.stream()
    for chunk in chunks:
        stream.push_frame(chunk)
        await asyncio.sleep(0)  # frames arrive one by one, as from a transport
    if end:
        stream.end_input()
        events = [event async for event in stream]
    else:
        await asyncio.sleep(0.2)
        events = []
        while not stream._queue.empty():
            events.append(stream._queue.get_nowait())
    await stream.aclose()
    return events


def summary(events: list[VADEvent]) -> list[tuple[str, float]]:
    return [(e.type.value, round(e.timestamp, 3)) for e in events]


async def test_one_segment_per_utterance(vad: SileroVAD, clips: list) -> None:
    for name, samples, real_start, real_end in clips:
        events = await detect(vad, frames(samples, 16_000, 0.02))
        assert [e.type for e in events] == [START, END], (name, summary(events))
        start, end = events
        # START comes within 0.3 s of the real start (the detector needs ~0.13 s of evidence).
        assert real_start < start.timestamp <= real_start + 0.3 + 0.13, (name, real_start, summary(events))
        assert start.timestamp - start.speech_duration == pytest.approx(real_start, abs=0.3)
        assert start.silence_duration == 0.0 and start.probability >= 0.5
        # END reports the hang-over silence that triggered it.
        assert end.silence_duration == pytest.approx(0.4, abs=0.033)
        assert end.timestamp - end.silence_duration == pytest.approx(real_end, abs=0.3), (
            name,
            real_end,
            summary(events),
        )
        assert 0.6 * (real_end - real_start) <= end.speech_duration <= real_end - real_start + 0.3
        assert end.probability < 0.35


async def test_two_utterances_in_one_stream(vad: SileroVAD, clips: list) -> None:
    samples = np.concatenate([clips[0][1], clips[1][1]])
    events = await detect(vad, frames(samples, 16_000, 0.02))
    assert [e.type for e in events] == [START, END, START, END], summary(events)
    offset = len(clips[0][1]) / 16_000
    assert events[2].timestamp - events[2].speech_duration == pytest.approx(offset + clips[1][2], abs=0.3)


async def test_silence_and_low_noise_never_start(vad: SileroVAD) -> None:
    rng = np.random.default_rng(7)
    assert await detect(vad, frames(np.zeros(3 * 16_000, np.int16), 16_000, 0.02)) == []
    for level in (0.003, 0.01, 0.03):  # RMS relative to full scale
        noise = (rng.standard_normal(3 * 16_000) * level * 32768).astype(np.int16)
        events = await detect(vad, frames(noise, 16_000, 0.02))
        assert not [e for e in events if e.type is START], (level, summary(events))


@pytest.mark.parametrize("seconds", [0.007, 0.033, 0.1, 4.0])
async def test_frame_size_does_not_change_events(vad: SileroVAD, clips: list, seconds: float) -> None:
    samples = clips[2][1]
    reference = await detect(vad, frames(samples, 16_000, 0.02))
    events = await detect(vad, frames(samples, 16_000, seconds))
    assert summary(events) == summary(reference)
    assert [e.probability for e in events] == pytest.approx([e.probability for e in reference], abs=1e-4)


@pytest.mark.parametrize("rate", [8_000, 24_000, 48_000])
async def test_other_sample_rates(vad: SileroVAD, clips: list, rate: int) -> None:
    _, samples, real_start, real_end = clips[3]
    converted = soxr.resample(samples, 16_000, rate, quality="HQ")
    events = await detect(vad, frames(converted, rate, 0.02))
    assert [e.type for e in events] == [START, END], (rate, summary(events))
    assert events[0].timestamp - events[0].speech_duration == pytest.approx(real_start, abs=0.3)
    assert events[1].timestamp - events[1].silence_duration == pytest.approx(real_end, abs=0.3)


async def test_stereo_is_mixed_down(vad: SileroVAD, clips: list) -> None:
    samples = clips[4][1]
    stereo = np.stack([samples, samples], axis=1).reshape(-1)
    chunks = [AudioFrame(stereo[i : i + 640].tobytes(), 16_000, 2) for i in range(0, len(stereo), 640)]
    assert summary(await detect(vad, chunks)) == summary(await detect(vad, frames(samples, 16_000, 0.02)))


async def test_streams_are_independent(vad: SileroVAD, clips: list) -> None:
    speech = frames(clips[5][1], 16_000, 0.02)
    quiet = frames(np.zeros(len(clips[5][1]), np.int16), 16_000, 0.02)
    alone = await detect(vad, speech)
    a, b = vad.stream(), vad.stream()
    for loud, silent in zip(speech, quiet, strict=True):
        a.push_frame(loud)
        b.push_frame(silent)
    a.end_input()
    b.end_input()
    events_a = [e async for e in a]
    events_b = [e async for e in b]
    await asyncio.gather(a.aclose(), b.aclose())
    assert summary(events_a) == summary(alone)
    assert events_b == []


async def test_speech_duration_tracks_actual_speech(vad: SileroVAD, clips: list) -> None:
    _, samples, _, real_end = clips[6]
    stream = vad.stream()
    seen: list[tuple[float, float, bool]] = []  # (time, speech_duration, speaking)
    for index, chunk in enumerate(frames(samples, 16_000, 0.02)):
        stream.push_frame(chunk)
        if not stream._model.inline:
            await asyncio.sleep(0.003)
        seen.append(((index + 1) * 0.02, stream.speech_duration or 0.0, stream.speaking))
    stream.end_input()
    events = [e async for e in stream]
    await stream.aclose()
    assert [e.type for e in events] == [START, END]
    during = [d for t, d, speaking in seen if speaking]
    assert during and during == sorted(during), "speech_duration only grows within a segment"
    # In the hang-over after the speech it stops growing: trailing silence is not speech.
    tail = [d for t, d, speaking in seen if speaking and t > real_end + 0.15]
    assert tail and max(tail) - min(tail) < 0.07
    assert max(during) == pytest.approx(events[1].speech_duration, abs=0.07)
    assert seen[-1][1] == 0.0 and stream.speech_duration == 0.0


async def test_end_input_mid_speech_closes_the_segment(vad: SileroVAD, clips: list) -> None:
    samples = clips[7][1]
    cut = int((clips[7][2] + 0.8) * 16_000)
    events = await detect(vad, frames(samples[:cut], 16_000, 0.02))
    assert [e.type for e in events] == [START, END]
    assert events[1].silence_duration < 0.1


async def test_aclose_is_prompt_and_idempotent(vad: SileroVAD, clips: list) -> None:
    before = asyncio.all_tasks()
    stream = vad.stream()
    for chunk in frames(np.concatenate([c[1] for c in clips]), 16_000, 0.5):
        stream.push_frame(chunk)
    await asyncio.wait_for(stream.aclose(), 0.5)
    await stream.aclose()
    stream.push_frame(frames(clips[0][1], 16_000, 0.02)[0])  # ignored after close
    leftover = [e async for e in stream]  # iteration ends after close
    assert all(isinstance(e, VADEvent) for e in leftover)
    assert not [t for t in asyncio.all_tasks() - before if not t.done()]


def test_model_is_loaded_once(vad: SileroVAD) -> None:
    other = SileroVAD(backend=vad.settings.backend, threshold=0.7)
    assert other._load() is vad._load()


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_VAD_SILERO_THRESHOLD", "0.6")
    monkeypatch.setenv("VOCALIS_VAD_SILERO_MIN_SILENCE_DURATION", "0.25")
    settings = SileroVAD().settings
    assert settings.threshold == 0.6 and settings.min_silence_duration == 0.25
    assert settings.deactivation == pytest.approx(0.45)
    with pytest.raises(ValueError, match="deactivation_threshold"):
        SileroVAD(threshold=0.4, deactivation_threshold=0.6)


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="vad:silero.*does not exist"):
        SileroVAD(model_path=str(tmp_path / "nope.onnx")).stream()
    onnx = tmp_path / "silero.onnx"
    onnx.write_bytes(b"")
    with pytest.raises(ProviderError, match="does not fit backend"):
        SileroVAD(backend="ggml", model_path=str(onnx)).stream()


def test_auto_prefers_an_onnx_file_when_one_is_installed() -> None:
    kind, path = models.resolve("auto", None)
    assert kind == ("onnx" if models.find_onnx_model() else "ggml") and path.is_file()


def test_registered_as_the_default_vad() -> None:
    from vocalis.plugin.manager import make_plugin_manager

    registry = make_plugin_manager().registry
    assert isinstance(registry.create("vad", "silero"), SileroVAD)
    assert "silero" in registry.names("vad")
