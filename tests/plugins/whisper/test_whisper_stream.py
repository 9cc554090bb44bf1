"""Whisper behind the core's SegmentedSTTStream, driven the way the pipeline drives it."""

from __future__ import annotations

import asyncio
import json
import re
import time
import wave
from pathlib import Path

import pytest

from vocalis.audio import AudioFrame
from vocalis.providers.adapters import SegmentedSTTStream
from vocalis.providers.stt import SpeechEvent, SpeechEventType
from vocalis_whisper import WhisperSTT

SPEECH = Path(__file__).resolve().parents[2] / "data" / "speech"
FRAME = 0.02


def clip(index: int) -> tuple[list[AudioFrame], str]:
    item = json.loads((SPEECH / "manifest.json").read_text())[index]
    with wave.open(str(SPEECH / item["file"])) as wav:
        rate, data = wav.getframerate(), wav.readframes(wav.getnframes())
    step = 2 * int(rate * FRAME)
    return [AudioFrame(data[i : i + step], rate) for i in range(0, len(data), step)], item["text"]


def normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


@pytest.fixture(scope="module")
def stt() -> WhisperSTT:
    provider = WhisperSTT()
    asyncio.run(provider.prewarm())
    return provider


async def test_interims_while_speaking_then_a_final(stt: WhisperSTT) -> None:
    frames, text = clip(8)  # the longest clip (~3.2 s)
    stream = SegmentedSTTStream(stt)
    events: list[tuple[float, SpeechEvent]] = []
    started = time.perf_counter()

    async def read() -> None:
        async for event in stream:
            events.append((time.perf_counter() - started, event))

    reader = asyncio.create_task(read())
    for _ in range(20):  # 0.4 s of silence: the pre-roll history
        stream.push_frame(AudioFrame.silence(FRAME))
        await asyncio.sleep(FRAME)
    stream.start_segment()  # VAD: speech started
    for frame in frames:  # paced as a transport delivers it
        stream.push_frame(frame)
        await asyncio.sleep(FRAME)
    spoken = time.perf_counter() - started
    stream.flush()  # VAD: speech ended
    stream.end_input()
    await asyncio.wait_for(reader, 30)
    await stream.aclose()

    kinds = [event.type for _, event in events]
    assert SpeechEventType.INTERIM_TRANSCRIPT in kinds, kinds
    assert kinds[-1] is SpeechEventType.FINAL_TRANSCRIPT and kinds.count(SpeechEventType.FINAL_TRANSCRIPT) == 1
    first_interim = next(at for at, event in events if event.type is SpeechEventType.INTERIM_TRANSCRIPT)
    assert first_interim < spoken, "an interim must arrive while the user still speaks"
    final = events[-1][1]
    assert normalised(final.text) == normalised(text)
    assert 0.0 < final.confidence <= 1.0
    interims = [event.text for _, event in events if event.type is SpeechEventType.INTERIM_TRANSCRIPT]
    # Interims grow towards the final: the first words are already there.
    assert normalised(interims[0]).split()[:1] == normalised(text).split()[:1]


async def test_silent_segment_gives_an_empty_final(stt: WhisperSTT) -> None:
    stream = SegmentedSTTStream(stt)
    stream.start_segment()
    for _ in range(50):
        stream.push_frame(AudioFrame.silence(FRAME))
    stream.flush()
    stream.end_input()
    events = [event async for event in stream]
    await stream.aclose()
    assert [(e.type, e.text) for e in events] == [(SpeechEventType.FINAL_TRANSCRIPT, "")]


async def test_closing_mid_recognition_is_prompt_and_clean(stt: WhisperSTT) -> None:
    frames, _ = clip(0)
    before = asyncio.all_tasks()
    stream = SegmentedSTTStream(stt)
    stream.start_segment()
    for frame in frames:
        stream.push_frame(frame)
    stream.flush()
    await asyncio.sleep(0.05)  # the final recognition is now running
    started = time.perf_counter()
    await stream.aclose()
    await stream.aclose()
    assert time.perf_counter() - started < 0.1
    await asyncio.sleep(0)
    assert not [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
    # The shared model is still usable for the next session.
    event = await stt.recognize(frames)
    assert event.text
