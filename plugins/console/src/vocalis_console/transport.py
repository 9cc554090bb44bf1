"""The ``console`` transport: the local microphone in, the speaker out."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, ClassVar

from pydantic import Field

from vocalis.audio import AudioFrame, AudioResampler
from vocalis.providers.audio_output import AudioOutput
from vocalis.providers.transport import AudioSink, Transport
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis_console.devices import DuplexDevice, SoundDevice

# Without echo cancellation the microphone hears the speaker for a moment
# after it stops; half-duplex mode keeps the mic muted this long after.
ECHO_TAIL = 0.25


class SpeakerOutput(AudioOutput):
    """Agent audio, resampled to the device rate, in a buffer the sound card drains."""

    def __init__(self, sample_rate: int) -> None:
        super().__init__()
        self.device_rate = sample_rate
        self._resampler = AudioResampler(sample_rate)
        self._buffer = bytearray()
        self._lock = threading.Lock()  # the sound card pulls on its own thread
        self.busy_until = 0.0  # time.monotonic() when the speaker falls silent

    def deliver(self, frame: AudioFrame) -> None:
        out = self._resampler.push(frame)
        if out is not None and out.data:
            with self._lock:
                self._buffer += out.data

    def discard(self) -> None:
        with self._lock:
            self._buffer.clear()

    def pull(self, nbytes: int) -> bytes:
        """What the speaker plays next: queued audio, then silence."""
        with self._lock:
            chunk = bytes(self._buffer[:nbytes])
            del self._buffer[:nbytes]
        if chunk:
            self.busy_until = time.monotonic() + ECHO_TAIL + len(chunk) / (2 * self.device_rate)
        return chunk + bytes(nbytes - len(chunk))


class ConsoleTransport(Transport):
    """Talk to the agent through this machine's microphone and speaker.

    Args:
        device: The sound card; by default the system's (through PortAudio),
            chosen by the settings.
        **kwargs: Settings fields.
    """

    name: ClassVar[str] = "console"

    class Settings(ProviderSettings):
        """Settings, read from ``VOCALIS_TRANSPORT_CONSOLE_*``.

        Attributes:
            input_device: Microphone index or name substring (None: default).
            output_device: Speaker index or name substring (None: default).
            sample_rate: Device rate; None uses the microphone's default.
            block_ms: Audio block length.
            half_duplex: Mute the microphone while the agent speaks, so it
                does not hear (and interrupt) itself through the speaker.
                Turn off with headphones to interrupt the agent by voice.
        """

        model_config = provider_settings_config("transport", "console")

        input_device: int | str | None = None
        output_device: int | str | None = None
        sample_rate: int | None = Field(None, ge=8000, le=48000)
        block_ms: int = Field(20, ge=10, le=100)
        half_duplex: bool = True

    settings: Settings

    def __init__(self, device: DuplexDevice | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        s = self.settings
        self.device = device or SoundDevice(s.input_device, s.output_device, s.sample_rate, s.block_ms)
        self.audio_output: SpeakerOutput = SpeakerOutput(self.device.sample_rate)
        self._sink: AudioSink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def start(self, sink: AudioSink) -> None:
        self._sink = sink
        self._loop = asyncio.get_running_loop()
        self.device.start(self._captured, self.audio_output.pull)

    def _captured(self, pcm: bytes) -> None:
        # On the sound card's thread: hand the block to the loop.
        loop = self._loop
        if loop is not None and not self._closed:
            loop.call_soon_threadsafe(self._push, pcm)

    def _push(self, pcm: bytes) -> None:
        if self._sink is None or self._closed or len(pcm) % 2:
            return
        if self.settings.half_duplex and time.monotonic() < self.audio_output.busy_until:
            pcm = bytes(len(pcm))  # silence keeps the VAD's clock running
        self._sink.push_audio(AudioFrame(pcm, self.device.sample_rate))

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.device.close()
