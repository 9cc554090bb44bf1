"""What the deepgram tests share: the speech clips, providers aimed at the
servers, and driving a live stream (push audio at a pace, collect the events)."""

from __future__ import annotations

import asyncio
import json
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from deepgram_listen_server import ListenServer
from deepgram_server_base import API_KEY
from deepgram_speak_server import SpeakServer

from vocalis.audio import AudioFrame
from vocalis.providers.base import ProviderError
from vocalis.providers.stt import SpeechEvent, SpeechEventType, STTStream
from vocalis.testing import Conversation
from vocalis.testing.conformance import frames_of, silence
from vocalis_deepgram import DeepgramSTT, DeepgramTTS

SPEECH = Path(__file__).resolve().parents[2] / "data" / "speech"


def utterance(index: int = 0) -> tuple[list[AudioFrame], str]:
    """One clip of the speech corpus (16 kHz, 20 ms frames) and what it says."""
    item = json.loads((SPEECH / "manifest.json").read_text())[index]
    with wave.open(str(SPEECH / item["file"])) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    return frames_of(samples, 16_000), item["text"]


def stt_for(server: ListenServer, **overrides: Any) -> DeepgramSTT:
    options: dict[str, Any] = {"api_key": API_KEY, "base_url": server.url, "reconnect_delay": 0.01}
    options.update(overrides)
    return DeepgramSTT(_env_file=None, **options)


def tts_for(server: SpeakServer, **overrides: Any) -> DeepgramTTS:
    options: dict[str, Any] = {"api_key": API_KEY, "base_url": server.url}
    options.update(overrides)
    return DeepgramTTS(_env_file=None, **options)


async def say(conv: Conversation, frames: list[AudioFrame]) -> None:
    """Push a clip into a conversation at the pace of a microphone (20 ms frames)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    for index, frame in enumerate(frames):
        await conv.push(frame)
        await asyncio.sleep(max(0.0, start + (index + 1) * 0.02 - loop.time()))


SILENCE_20MS = silence(0.02)[0]


@dataclass
class Recorder:
    """Reads a stream in the background; keeps its events and how it ended."""

    stream: STTStream
    events: list[SpeechEvent] = field(default_factory=list)
    error: ProviderError | None = None
    task: asyncio.Task[None] | None = None

    def start(self) -> Recorder:
        self.task = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self) -> None:
        try:
            async for event in self.stream:
                self.events.append(event)
        except ProviderError as exc:
            self.error = exc

    async def done(self, timeout: float = 30.0) -> None:
        assert self.task is not None
        await asyncio.wait_for(asyncio.shield(self.task), timeout)

    def finals(self) -> list[str]:
        return [e.text for e in self.events if e.type is SpeechEventType.FINAL_TRANSCRIPT]

    def spoken_finals(self) -> list[str]:
        return [text for text in self.finals() if text]

    def types(self) -> list[str]:
        return [e.type.value for e in self.events]

    async def until(self, predicate: object, timeout: float = 20.0) -> None:
        async def wait() -> None:
            while not predicate():  # type: ignore[operator]
                if self.task is not None and self.task.done():
                    raise AssertionError(f"the stream ended first: {self.types()} {self.error}")
                await asyncio.sleep(0.01)

        await asyncio.wait_for(wait(), timeout)


async def push(stream: STTStream, frames: Sequence[AudioFrame], pace: float = 0.002) -> None:
    """Push frames, ``pace`` seconds apart (faster than real time: the server counts audio time)."""
    for frame in frames:
        stream.push_frame(frame)
        await asyncio.sleep(pace)


async def quiet(stream: STTStream, seconds: float, pace: float = 0.002) -> None:
    """Push ``seconds`` of silence."""
    await push(stream, [SILENCE_20MS] * round(seconds / 0.02), pace)
