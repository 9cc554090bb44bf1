"""The stream's hysteresis state machine, driven by scripted window probabilities."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from vocalis.audio import AudioFrame
from vocalis.providers.vad import VADEvent, VADEventType
from vocalis.testing import run_virtual
from vocalis_silero import SileroVAD, SileroVADStream

START, END = VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH
W = 0.032


class ScriptedModel:
    """Returns the next scripted probability for each window."""

    backend = "scripted"
    flavour = "test"

    def __init__(self, probabilities: list[float], *, inline: bool = True) -> None:
        self.probabilities = list(probabilities)
        self.inline = inline

    def new_state(self) -> Any:
        return None

    def score(self, state: Any, windows: np.ndarray) -> np.ndarray:
        out, self.probabilities = self.probabilities[: len(windows)], self.probabilities[len(windows) :]
        return np.array(out + [0.0] * (len(windows) - len(out)), np.float32)


async def run(
    probabilities: list[float], *, inline: bool = True, **settings: Any
) -> tuple[list[VADEvent], list[float]]:
    vad = SileroVAD(**settings)
    stream = SileroVADStream(vad, ScriptedModel(probabilities, inline=inline))
    durations = []
    for _ in probabilities:
        stream.push_frame(AudioFrame(bytes(1024), 16_000))  # one window per push
        if not inline:
            await asyncio.sleep(0.001)
        durations.append(stream.speech_duration or 0.0)
    stream.end_input()
    events = [event async for event in stream]
    await stream.aclose()
    return events, durations


@pytest.mark.parametrize("inline", [True, False])
def test_hysteresis_and_minimum_durations(inline: bool) -> None:
    script = (
        [0.9] * 3
        + [0.1]  # 96 ms of speech: shorter than min_speech (0.1 s), ignored
        + [0.9] * 4  # 128 ms: START at window 8
        + [0.4] * 5  # between deactivation (0.35) and threshold: still speech
        + [0.2] * 12  # 384 ms of silence: less than the 0.4 s hang-over
        + [0.8] * 2
        + [0.1] * 13  # 416 ms: END
        + [0.45] * 10  # below threshold while not speaking: nothing
    )
    # On the virtual clock the 1 ms pause after each push ends only once the
    # executor has scored the window (the clock stands still meanwhile), so
    # speech_duration is read after the window counted, however busy the machine.
    events, durations = run_virtual(run(script, inline=inline))
    assert [e.type for e in events] == [START, END]
    start, end = events
    assert start.timestamp == pytest.approx(8 * W) and start.speech_duration == pytest.approx(4 * W)
    assert start.probability == pytest.approx(0.9)
    # Speech counted: 4 + 5 + 2 windows; the 12-window pause is not speech.
    assert end.speech_duration == pytest.approx(11 * W)
    assert end.silence_duration == pytest.approx(13 * W)
    assert end.timestamp == pytest.approx((8 + 5 + 12 + 2 + 13) * W)
    assert durations[7] == pytest.approx(4 * W) and durations[12] == pytest.approx(9 * W)
    assert durations[24] == pytest.approx(9 * W), "the pause does not grow speech_duration"
    assert durations[-1] == 0.0


async def test_settings_change_the_boundaries() -> None:
    script = [0.7] * 2 + [0.55] * 3 + [0.3] * 4 + [0.0] * 3
    events, _ = await run(
        script, threshold=0.6, deactivation_threshold=0.5, min_speech_duration=0.05, min_silence_duration=0.12
    )
    assert [(e.type, round(e.timestamp / W)) for e in events] == [(START, 2), (END, 9)]


async def test_end_input_closes_an_open_segment() -> None:
    events, _ = await run([0.9] * 6 + [0.1] * 2)
    assert [e.type for e in events] == [START, END]
    assert events[1].silence_duration == pytest.approx(2 * W)
    assert events[1].speech_duration == pytest.approx(6 * W)


async def test_a_failing_model_ends_the_stream_with_a_labelled_error() -> None:
    class Broken(ScriptedModel):
        def score(self, state: Any, windows: np.ndarray) -> np.ndarray:
            raise RuntimeError("boom")

    stream = SileroVADStream(SileroVAD(), Broken([], inline=False))
    stream.push_frame(AudioFrame(bytes(4096), 16_000))
    with pytest.raises(Exception, match="vad:silero.*boom"):
        async for _ in stream:
            pass
    await stream.aclose()
