"""Whisper behind the core's SegmentedSTTStream, driven the way the pipeline drives it."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import wave
from pathlib import Path
from typing import Any

import pytest

from vocalis.audio import AudioFrame
from vocalis.providers.adapters import SegmentedSTTStream
from vocalis.providers.stt import SpeechEvent, SpeechEventType
from vocalis.testing import run_virtual
from vocalis_whisper import WhisperSTT
from vocalis_whisper import stt as stt_module

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


def test_interims_while_speaking_then_a_final(stt: WhisperSTT) -> None:
    """Interims come while the segment is still open, then one final.

    On a virtual clock the audio is paced as a transport delivers it and the
    clock stands still while Whisper decodes (an executor job), so how fast
    the machine is cannot decide whether an interim lands before the end of
    speech; whether Whisper keeps up in real time is measured in bench/.
    """
    frames, text = clip(8)  # the longest clip (~3.2 s)

    async def speak() -> tuple[list[tuple[float, SpeechEvent]], float, int]:
        loop = asyncio.get_running_loop()
        stream = SegmentedSTTStream(stt)
        events: list[tuple[float, SpeechEvent]] = []

        async def read() -> None:
            async for event in stream:
                events.append((loop.time(), event))

        reader = asyncio.create_task(read())
        for _ in range(20):  # 0.4 s of silence: the pre-roll history
            stream.push_frame(AudioFrame.silence(FRAME))
            await asyncio.sleep(FRAME)
        stream.start_segment()  # VAD: speech started
        for frame in frames:  # paced as a transport delivers it
            stream.push_frame(frame)
            await asyncio.sleep(FRAME)
        spoken, heard_while_speaking = loop.time(), len(events)
        stream.flush()  # VAD: speech ended
        stream.end_input()
        await asyncio.wait_for(reader, 60)
        await stream.aclose()
        return events, spoken, heard_while_speaking

    events, spoken, heard_while_speaking = run_virtual(speak())
    kinds = [event.type for _, event in events]
    assert SpeechEventType.INTERIM_TRANSCRIPT in kinds, kinds
    assert kinds[-1] is SpeechEventType.FINAL_TRANSCRIPT and kinds.count(SpeechEventType.FINAL_TRANSCRIPT) == 1
    first_interim = next(at for at, event in events if event.type is SpeechEventType.INTERIM_TRANSCRIPT)
    assert first_interim < spoken, "an interim must arrive while the user still speaks"
    assert heard_while_speaking >= 1 and kinds[0] is SpeechEventType.INTERIM_TRANSCRIPT
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


async def test_closing_mid_recognition_is_prompt_and_clean(stt: WhisperSTT, monkeypatch: pytest.MonkeyPatch) -> None:
    """aclose() does not wait for a recognition in flight, and tells it to stop.

    The final recognition is held on the model's worker thread until it is
    told to stop (or a minute passes): an aclose() that waited for it would
    not return. No wall-clock bound: a loaded machine is slow, not wrong.
    """
    frames, _ = clip(0)
    running = threading.Event()
    seen: list[threading.Event] = []
    real_decode = stt_module._decode

    def held_decode(loaded: Any, audio: Any, options: Any, cancel: threading.Event) -> Any:
        seen.append(cancel)
        running.set()
        cancel.wait(60)  # "decoding" until told to stop
        return real_decode(loaded, audio, options, cancel)

    monkeypatch.setattr(stt_module, "_decode", held_decode)
    before = asyncio.all_tasks()
    stream = SegmentedSTTStream(stt)
    stream.start_segment()
    for frame in frames:
        stream.push_frame(frame)
    stream.flush()
    assert await asyncio.to_thread(running.wait, 60)  # the final recognition is now running
    await asyncio.wait_for(stream.aclose(), 30)
    await stream.aclose()
    assert len(seen) == 1 and seen[0].is_set(), "aclose() must stop the running decode"
    await asyncio.sleep(0)
    assert not [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
    # The shared model is still usable for the next session.
    monkeypatch.setattr(stt_module, "_decode", real_decode)
    event = await stt.recognize(frames)
    assert event.text
