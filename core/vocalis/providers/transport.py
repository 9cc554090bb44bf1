"""Transport contract: how user audio gets in and agent audio gets out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol

from vocalis.audio import AudioFrame
from vocalis.providers.audio_output import AudioOutput, PlaybackResult
from vocalis.providers.base import Provider, ProviderKind
from vocalis.settings import ProviderSettings


class AudioSink(Protocol):
    """What a transport feeds user audio into (the session)."""

    def push_audio(self, frame: AudioFrame) -> None:
        """Hand over one frame of user audio."""
        ...


__all__ = ["AudioOutput", "AudioSink", "PlaybackResult", "Transport"]


class Transport(Provider):
    """Base class of transports (a browser connection, a phone call, files).

    Attributes:
        audio_output: Where the session writes agent audio.
    """

    kind: ClassVar[ProviderKind] = ProviderKind.TRANSPORT

    def __init__(self, *, settings: ProviderSettings | None = None, **overrides: object) -> None:
        super().__init__(settings=settings, **overrides)
        self.audio_output = AudioOutput()

    async def start(self, sink: AudioSink) -> None:
        """Begin delivering user audio to ``sink.push_audio``."""

    def send_event(self, event: str, payload: Mapping[str, object]) -> None:
        """Forward a session event to the remote side (transcripts, states)."""
