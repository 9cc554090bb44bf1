"""PiperTTS with the bundled en_US-joe-medium voice: real inference."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from vocalis.audio import AudioFrame
from vocalis.providers.base import ProviderError
from vocalis_piper import PiperTTS
from vocalis_piper.voice import LoadedVoice, default_voice_path, load_voice

LONG = (
    "This is a rather long sentence without a single stop that goes on and on about "
    "the weather and the trains and the restaurants in town "
) * 3


@pytest.fixture(scope="module")
def tts() -> PiperTTS:
    provider = PiperTTS()
    asyncio.run(provider.prewarm())
    return provider


class InferenceGate:
    """Wraps ``LoadedVoice.infer``: counts inferences and, once armed, holds the
    next one on the voice's worker thread until ``run_options.terminate`` is set
    (or ``release``), then runs the real inference with those options.

    A held inference stands for a long one that is still running: code that
    waited for it, or never stopped it, would hang instead of being slow.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.armed = threading.Event()
        self.holding = threading.Event()
        self.finished = threading.Event()
        self.release = threading.Event()
        self.terminated: bool | None = None  # the held inference saw the terminate flag
        self.aborted: bool | None = None  # onnxruntime then refused to run it
        real = LoadedVoice.infer

        def infer(voice: LoadedVoice, ids: list[int], **kwargs: Any) -> Any:
            self.calls += 1
            if not self.armed.is_set() or self.holding.is_set():
                return real(voice, ids, **kwargs)
            self.holding.set()
            options = kwargs.get("run_options")
            while not self.release.wait(0.005) and not (options is not None and options.terminate):
                pass
            self.terminated = bool(options is not None and options.terminate)
            try:
                return real(voice, ids, **kwargs)
            except Exception:
                self.aborted = True
                raise
            finally:
                self.aborted = bool(self.aborted)
                self.finished.set()

        monkeypatch.setattr(LoadedVoice, "infer", infer)


async def speak(tts: PiperTTS, text: str) -> list[AudioFrame]:
    return [frame async for frame in tts.synthesize(text)]


def seconds(frames: list[AudioFrame]) -> float:
    return sum(frame.duration for frame in frames)


async def test_audio_at_the_voice_rate(tts: PiperTTS) -> None:
    assert PiperTTS.sample_rate == 22_050 and tts.sample_rate == 22_050
    frames = await speak(tts, "Hello world, this is a test of the speech synthesizer.")
    assert frames and {f.sample_rate for f in frames} == {22_050}
    assert {f.channels for f in frames} == {1}
    # ~14 syllables of speech: between one and a half and five seconds.
    assert 1.5 < seconds(frames) < 5.0
    assert all(0.02 <= f.duration <= 0.1 for f in frames[:-1]) and frames[-1].duration <= 0.1
    loud = max(int(abs(f.to_numpy()).max()) for f in frames)
    assert loud > 20_000  # normalised, not silence


async def test_punctuation_changes_prosody() -> None:
    # No sentence gap and no duration noise: only the phonemes decide the length.
    exact = PiperTTS(sentence_silence=0.0, noise_w=0.0)
    plain = seconds(await speak(exact, "Hello world"))
    stopped = seconds(await speak(exact, "Hello. World."))
    comma = seconds(await speak(exact, "Hello, world."))
    period = seconds(await speak(exact, "Hello world."))
    question = seconds(await speak(exact, "Hello world?"))
    assert stopped > plain + 0.2
    assert comma > period + 0.15  # the pause at the comma
    assert period > plain and question != period


async def test_speed_setting_changes_length(tts: PiperTTS) -> None:
    text = "Please set a timer for fifteen minutes."
    slow = PiperTTS(length_scale=1.5, noise_w=0.0)
    fast = PiperTTS(length_scale=0.7, noise_w=0.0)
    slow_s = seconds(await speak(slow, text))
    fast_s = seconds(await speak(fast, text))
    assert slow_s > 1.7 * fast_s


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "...", "✓ … \u200b", "\x00\x07"])
async def test_nothing_to_say_gives_no_frames(tts: PiperTTS, text: str) -> None:
    assert await speak(tts, text) == []


async def test_non_str_is_a_clear_error(tts: PiperTTS) -> None:
    with pytest.raises(ProviderError, match="tts:piper"):
        await speak(tts, 42)  # type: ignore[arg-type]


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_TTS_PIPER_LENGTH_SCALE", "1.3")
    monkeypatch.setenv("VOCALIS_TTS_PIPER_SENTENCE_SILENCE", "0.5")
    provider = PiperTTS()
    assert provider.settings.length_scale == 1.3
    assert provider.settings.sentence_silence == 0.5
    assert PiperTTS(length_scale=0.9).settings.length_scale == 0.9  # code wins


async def test_sentence_silence_between_sentences(tts: PiperTTS) -> None:
    text = "Good morning. See you later."
    quiet = PiperTTS(sentence_silence=0.0, noise_w=0.0)
    gap = PiperTTS(sentence_silence=1.0, noise_w=0.0)
    difference = seconds(await speak(gap, text)) - seconds(await speak(quiet, text))
    assert difference == pytest.approx(1.0, abs=0.15)


async def test_long_text_streams_sentence_by_sentence(tts: PiperTTS) -> None:
    text = "Here is the first sentence. " + LONG
    started = time.perf_counter()
    first_at = None
    frames = []
    async for frame in tts.synthesize(text):
        first_at = first_at or time.perf_counter() - started
        frames.append(frame)
    total = time.perf_counter() - started
    assert first_at is not None and first_at < total / 3
    assert 15 < seconds(frames) < 40  # the long unpunctuated run is cut into pieces


async def test_core_streaming_path(tts: PiperTTS) -> None:
    stream = tts.stream()
    for token in ["Hi", " there", "! How", " can I", " help", " you", " today?"]:
        stream.push_text(token)
        await asyncio.sleep(0)
    stream.end_input()
    out = [audio async for audio in stream]
    await stream.aclose()
    assert [a.text for a in out if a.text] == ["Hi there!", "How can I help you today?"]
    assert [a.segment_end for a in out].count(True) == 2 and out[-1].segment_end
    assert all(a.frame.sample_rate == 22_050 for a in out)


async def test_cancellation_stops_inference(tts: PiperTTS, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = InferenceGate(monkeypatch)
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in tts.synthesize("Okay then. " + LONG):
            gate.armed.set()  # hold the next inference: one of the long sentence
            started.set()

    task = asyncio.create_task(consume())
    try:
        await asyncio.wait_for(started.wait(), 60)
        assert await asyncio.to_thread(gate.holding.wait, 60)  # inside the next inference
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The cancelled synthesis stops the inference it was waiting for
        # (onnxruntime's terminate flag) instead of letting it run on unseen...
        assert await asyncio.to_thread(gate.finished.wait, 60)
        assert gate.terminated and gate.aborted

        # ...so the shared executor is free: the next synthesis does not wait
        # for the rest of the long sentence (it would wait for `release`).
        async def first_frame() -> AudioFrame:
            async for frame in tts.synthesize("Okay."):
                return frame
            raise AssertionError("no audio")

        assert (await asyncio.wait_for(first_frame(), 60)).duration > 0
    finally:
        gate.release.set()


async def test_stream_aclose_midway(tts: PiperTTS, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = InferenceGate(monkeypatch)
    stream = tts.stream()
    stream.push_text("This sentence will be cut off early. " * 5)
    stream.end_input()
    try:
        async for _ in stream:
            gate.armed.set()  # an inference still to come is held until stopped
            break
        # aclose() neither waits for an inference in flight (a held one never
        # ends by itself) nor lets the other sentences be synthesised.
        await asyncio.wait_for(stream.aclose(), 60)
        await stream.aclose()
        calls = gate.calls
    finally:
        gate.release.set()
    assert tts._voice is not None
    await asyncio.get_running_loop().run_in_executor(tts._voice.executor, lambda: None)  # worker idle
    assert gate.calls == calls < 5, "sentences were synthesised after aclose()"
    if gate.holding.is_set():
        assert gate.terminated, "aclose() left the running inference to finish"


def test_model_is_loaded_once(tts: PiperTTS) -> None:
    other = PiperTTS(length_scale=1.2)
    asyncio.run(other.prewarm())
    assert other._voice is tts._voice
    assert load_voice(default_voice_path()) is tts._voice


def test_bad_voice_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="tts:piper.*does not exist"):
        PiperTTS(voice=tmp_path / "missing.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ProviderError, match="no voice config"):
        PiperTTS(voice=broken)


def test_voice_by_path_reports_its_rate(tmp_path: Path) -> None:
    model = default_voice_path()
    config = json.loads(model.with_name(model.name + ".json").read_text())
    config["audio"]["sample_rate"] = 16_000
    copy = tmp_path / "custom.onnx"
    copy.symlink_to(model)
    (tmp_path / "custom.onnx.json").write_text(json.dumps(config))
    provider = PiperTTS(voice=copy)
    assert provider.sample_rate == 16_000 and PiperTTS.sample_rate == 22_050
    assert provider.model_name == "custom"


def test_speaker_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="speaker_id 3"):
        PiperTTS(speaker_id=3)


def test_registered_through_the_entry_point() -> None:
    from vocalis import make_plugin_manager

    registry = make_plugin_manager().registry
    entry = registry.get("tts", "piper")
    assert entry.cls is PiperTTS and entry.default
    created = registry.create("tts", "piper", length_scale=1.1)
    assert isinstance(created, PiperTTS) and created.settings.length_scale == 1.1
