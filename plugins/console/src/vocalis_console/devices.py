"""The sound card, through PortAudio (the ``sounddevice`` package).

Everything that touches PortAudio is here, behind :class:`DuplexDevice`, so
the transport can be tested with a device the test drives, and a machine with
no audio system gets a clear :class:`AudioDeviceError` instead of a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from loguru import logger

InputCallback = Callable[[bytes], None]
OutputCallback = Callable[[int], bytes]


class AudioDeviceError(RuntimeError):
    """No usable microphone or speaker (or no audio system at all)."""


class DuplexDevice(Protocol):
    """A microphone and a speaker running at one rate, 16-bit mono.

    ``start`` calls ``on_input(pcm)`` with each captured block and
    ``pull_output(nbytes)`` whenever the speaker needs exactly ``nbytes``;
    both may run on the audio system's threads.
    """

    sample_rate: int

    def start(self, on_input: InputCallback, pull_output: OutputCallback) -> None: ...

    def close(self) -> None: ...


def load_sounddevice() -> Any:
    """Import ``sounddevice``, turning a missing PortAudio into a clear error."""
    try:
        import sounddevice
    except OSError as exc:  # the package is there, the C library is not
        raise AudioDeviceError(
            f"no audio system: PortAudio could not be loaded ({exc}). Install it "
            "(Debian/Ubuntu: apt install libportaudio2; macOS: brew install portaudio)."
        ) from None
    return sounddevice


def list_devices() -> str:
    """The audio devices PortAudio sees, as text."""
    return str(load_sounddevice().query_devices())


def _pick(sd: Any, device: int | str | None, kind: str) -> dict[str, Any]:
    try:
        info = sd.query_devices(device, kind)
    except (ValueError, sd.PortAudioError) as exc:
        what = "microphone" if kind == "input" else "speaker"
        wanted = f" {device!r}" if device is not None else ""
        raise AudioDeviceError(
            f"no {what}{wanted} found ({exc}); `vocalis console --list-devices` shows what exists"
        ) from None
    return dict(info)


class SoundDevice:
    """The default (or chosen) microphone and speaker.

    Args:
        input_device: Index or name substring; None for the system default.
        output_device: Index or name substring; None for the system default.
        sample_rate: Rate for both; None uses the microphone's default rate.
        block_ms: Milliseconds per block (latency vs. CPU wake-ups).
    """

    def __init__(
        self,
        input_device: int | str | None = None,
        output_device: int | str | None = None,
        sample_rate: int | None = None,
        block_ms: int = 20,
    ) -> None:
        self._sd = load_sounddevice()
        mic = _pick(self._sd, input_device, "input")
        _pick(self._sd, output_device, "output")
        self.input_device = input_device
        self.output_device = output_device
        self.sample_rate = int(sample_rate or mic["default_samplerate"])
        self.blocksize = self.sample_rate * block_ms // 1000
        self._streams: list[Any] = []

    def start(self, on_input: InputCallback, pull_output: OutputCallback) -> None:
        sd = self._sd

        def captured(data: Any, frames: int, time: Any, status: Any) -> None:
            if status:
                logger.debug("microphone: {}", status)
            on_input(bytes(data))

        def playing(data: Any, frames: int, time: Any, status: Any) -> None:
            if status:
                logger.debug("speaker: {}", status)
            data[:] = pull_output(len(data))

        try:
            common = {"samplerate": self.sample_rate, "channels": 1, "dtype": "int16", "blocksize": self.blocksize}
            self._streams = [
                sd.RawInputStream(device=self.input_device, callback=captured, **common),
                sd.RawOutputStream(device=self.output_device, callback=playing, **common),
            ]
            for stream in self._streams:
                stream.start()
        except sd.PortAudioError as exc:
            self.close()
            raise AudioDeviceError(f"could not open the audio devices: {exc}") from None

    def close(self) -> None:
        streams, self._streams = self._streams, []
        for stream in streams:
            try:
                stream.stop()
                stream.close()
            except Exception as exc:  # closing must not raise; the device may be gone
                logger.debug("closing an audio stream: {}", exc)
