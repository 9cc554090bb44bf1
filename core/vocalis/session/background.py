"""Background audio: ambient sound under the agent's voice, and a "thinking" sound.

Configure it with ``AgentSession(..., background_audio=BackgroundAudioConfig(...))``.
The session then writes agent speech into a :class:`BackgroundMixer`, which
sends the transport one steady stream of frames: the voice *plus* the ambient
loop *plus* the thinking loop while the agent is thinking (mixing, never
replacing).
"""

from __future__ import annotations

import asyncio
import wave
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vocalis.audio import AudioFormatError, AudioFrame
from vocalis.providers.audio_output import AudioOutput

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

BUILTIN_CLIPS = ("office", "typing")


class AudioClip:
    """A mono clip held as float32 samples in -1..1.

    Args:
        samples: The samples.
        sample_rate: Their rate.
    """

    def __init__(self, samples: npt.ArrayLike, sample_rate: int) -> None:
        import numpy as np

        self.samples = np.asarray(samples, dtype=np.float32)
        self.sample_rate = sample_rate

    @classmethod
    def from_wav(cls, path: str | Path) -> AudioClip:
        """Load a PCM WAV file (8/16/24/32-bit, any rate, channels averaged).

        Raises:
            AudioFormatError: Not a PCM WAV file, or empty.
        """
        import numpy as np

        try:
            with wave.open(str(path), "rb") as wav:
                width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
                raw = wav.readframes(wav.getnframes())
        except (wave.Error, EOFError) as exc:
            raise AudioFormatError(f"{path}: not a PCM WAV file ({exc})") from None
        if width == 1:
            data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
        elif width == 3:
            bytes3 = np.frombuffer(raw, np.uint8).reshape(-1, 3)
            ints = (
                bytes3[:, 0].astype(np.int32) | bytes3[:, 1].astype(np.int32) << 8 | bytes3[:, 2].astype(np.int32) << 16
            )
            data = np.where(ints >= 1 << 23, ints - (1 << 24), ints).astype(np.float32) / (1 << 23)
        elif width in (2, 4):
            dtype = np.int16 if width == 2 else np.int32
            data = np.frombuffer(raw, dtype).astype(np.float64) / float(np.iinfo(dtype).max)
        else:
            raise AudioFormatError(f"{path}: unsupported sample width {width}")
        if channels > 1:
            data = data.reshape(-1, channels).mean(axis=1)
        if data.size == 0:
            raise AudioFormatError(f"{path}: the file holds no audio")
        return cls(data, rate)

    @classmethod
    def builtin(cls, name: str, sample_rate: int = 24_000) -> AudioClip:
        """A built-in clip, synthesised (no recording is shipped).

        ``"office"`` is a soft, low room tone (filtered brown noise);
        ``"typing"`` is irregular soft key clicks.
        """
        import numpy as np

        rng = np.random.default_rng(7)
        if name == "office":
            seconds = 8.0
            noise = np.cumsum(rng.standard_normal(int(seconds * sample_rate)))
            noise -= np.convolve(noise, np.ones(2048) / 2048, mode="same")  # remove drift
            data = noise / (np.abs(noise).max() or 1.0) * 0.5
            fade = int(0.25 * sample_rate)  # cross-fade the ends so the loop is seamless
            data[:fade] = data[:fade] * np.linspace(0, 1, fade) + data[-fade:] * np.linspace(1, 0, fade)
            data = data[:-fade]
        elif name == "typing":
            seconds = 3.0
            data = np.zeros(int(seconds * sample_rate))
            click = rng.standard_normal(int(0.012 * sample_rate)) * np.exp(-np.linspace(0, 8, int(0.012 * sample_rate)))
            position = 0.05
            while position < seconds - 0.05:
                start = int(position * sample_rate)
                data[start : start + len(click)] += click * rng.uniform(0.3, 0.7)
                position += rng.uniform(0.08, 0.3)
            data /= np.abs(data).max() or 1.0
        else:
            raise ValueError(f"unknown built-in clip {name!r} (choose from {', '.join(BUILTIN_CLIPS)})")
        return cls(data.astype(np.float32), sample_rate)

    def at_rate(self, sample_rate: int) -> AudioClip:
        """This clip resampled (with soxr) to ``sample_rate``."""
        if sample_rate == self.sample_rate:
            return self
        import soxr

        return AudioClip(soxr.resample(self.samples, self.sample_rate, sample_rate), sample_rate)


def _load(source: str | Path | AudioClip, sample_rate: int) -> AudioClip:
    if isinstance(source, AudioClip):
        clip = source
    elif isinstance(source, str) and source in BUILTIN_CLIPS:
        clip = AudioClip.builtin(source, sample_rate)
    else:
        clip = AudioClip.from_wav(source)
    return clip.at_rate(sample_rate)


@dataclass
class BackgroundAudioConfig:
    """Background sound for a session.

    Attributes:
        ambient: Played under everything: a WAV path, a clip, or a built-in
            name (``"office"``). None for no ambient sound.
        ambient_volume: Gain for the ambient sound (0..1). Low by default so
            it never competes with the voice or confuses recognisers.
        thinking: Played while the agent is thinking (LLM or tool working):
            a WAV path, a clip, or a built-in name (``"typing"``).
        thinking_volume: Gain for the thinking sound.
        loop: Loop the ambient sound (the thinking sound always loops).
        sample_rate: Rate of the mixed stream sent to the transport.
        frame_seconds: Size of the mixed frames.
    """

    ambient: str | Path | AudioClip | None = None
    ambient_volume: float = 0.1
    thinking: str | Path | AudioClip | None = None
    thinking_volume: float = 0.3
    loop: bool = True
    sample_rate: int = 24_000
    frame_seconds: float = 0.02

    def __post_init__(self) -> None:
        for name in ("ambient_volume", "thinking_volume"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")


class _Loop:
    def __init__(self, clip: AudioClip, volume: float, *, loop: bool) -> None:
        self.samples = clip.samples * volume
        self.loop = loop
        self.offset = 0

    def take(self, count: int) -> np.ndarray[Any, Any]:
        import numpy as np

        out = np.zeros(count, dtype=np.float32)
        filled = 0
        while filled < count and (self.loop or self.offset < len(self.samples)):
            if self.offset >= len(self.samples):
                self.offset = 0
            part = self.samples[self.offset : self.offset + count - filled]
            out[filled : filled + len(part)] = part
            filled += len(part)
            self.offset += len(part)
        return out


class BackgroundMixer(AudioOutput):
    """An :class:`AudioOutput` that mixes agent speech with background sound
    and feeds the transport's output at a steady real-time pace.

    Args:
        inner: The transport's audio output.
        config: What to play.
    """

    def __init__(self, inner: AudioOutput, config: BackgroundAudioConfig) -> None:
        super().__init__()
        import numpy as np

        self.inner = inner
        self.config = config
        rate = config.sample_rate
        self._frame_samples = round(config.frame_seconds * rate)
        self._ambient = (
            _Loop(_load(config.ambient, rate), config.ambient_volume, loop=config.loop)
            if config.ambient is not None
            else None
        )
        self._thinking = (
            _Loop(_load(config.thinking, rate), config.thinking_volume, loop=True)
            if config.thinking is not None
            else None
        )
        self.thinking = False
        self._voice: deque[np.ndarray[Any, Any]] = deque()
        self._voice_offset = 0
        self._resampler: Any = None
        self._task: asyncio.Task[None] | None = None
        self._np = np

    def start(self) -> None:
        """Begin streaming to the transport."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def deliver(self, frame: AudioFrame) -> None:
        from vocalis.audio import AudioResampler

        if self._resampler is None:
            self._resampler = AudioResampler(self.config.sample_rate)
        converted = self._resampler.push(frame)
        if converted is not None:
            self._voice.append(converted.to_numpy().astype(self._np.float32) / 32768.0)

    def discard(self) -> None:
        self._voice.clear()
        self._voice_offset = 0
        self.inner.discard()

    def _take_voice(self, count: int) -> np.ndarray[Any, Any]:
        out = self._np.zeros(count, dtype=self._np.float32)
        filled = 0
        while filled < count and self._voice:
            head = self._voice[0]
            part = head[self._voice_offset : self._voice_offset + count - filled]
            out[filled : filled + len(part)] = part
            filled += len(part)
            self._voice_offset += len(part)
            if self._voice_offset >= len(head):
                self._voice.popleft()
                self._voice_offset = 0
        return out

    def mix_next(self) -> AudioFrame:
        """Build the next frame: voice + ambient + thinking, clipped."""
        count = self._frame_samples
        mixed = self._take_voice(count)
        if self._ambient is not None:
            mixed += self._ambient.take(count)
        if self._thinking is not None and self.thinking:
            mixed += self._thinking.take(count)
        return AudioFrame.from_numpy(self._np.clip(mixed, -1.0, 1.0), self.config.sample_rate)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        step = self._frame_samples / self.config.sample_rate
        next_tick = loop.time()
        while True:
            await self.inner.capture_frame(self.mix_next())
            next_tick += step
            await asyncio.sleep(max(0.0, next_tick - loop.time()))

    async def aclose(self) -> None:
        """Stop streaming."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
