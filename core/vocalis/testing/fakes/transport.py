"""A fake transport the test drives, with an audio output that records what it got."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from vocalis.audio import AudioFrame
from vocalis.providers.transport import AudioOutput, AudioSink, Transport
from vocalis.settings import ProviderSettings, provider_settings_config


# -- transport -----------------------------------------------------------------
@dataclass(slots=True)
class PlayedFrame:
    """A frame the fake transport received, with the loop time it arrived."""

    time: float
    frame: AudioFrame


class RecordingAudioOutput(AudioOutput):
    """Keeps every delivered frame and every clear (for assertions)."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[PlayedFrame] = []
        self.clears: list[float] = []

    def deliver(self, frame: AudioFrame) -> None:
        self.frames.append(PlayedFrame(asyncio.get_running_loop().time(), frame))

    def discard(self) -> None:
        self.clears.append(asyncio.get_running_loop().time())


class FakeTransport(Transport):
    """A transport the test drives: ``push`` user audio, inspect ``audio_output``."""

    name: ClassVar[str] = "fake"

    class Settings(ProviderSettings):
        model_config = provider_settings_config("transport", "fake")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.audio_output: RecordingAudioOutput = RecordingAudioOutput()
        self.sink: AudioSink | None = None
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.closed = 0

    async def start(self, sink: AudioSink) -> None:
        self.sink = sink

    def push(self, frame: AudioFrame) -> None:
        """Deliver user audio to the session."""
        if self.sink is None:
            raise RuntimeError("transport not started")
        self.sink.push_audio(frame)

    def send_event(self, event: str, payload: Mapping[str, object]) -> None:
        self.events.append((event, dict(payload)))

    async def aclose(self) -> None:
        self.closed += 1
