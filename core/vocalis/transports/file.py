"""A transport over audio files: the user's audio from a file, the agent's to a WAV file.

The input is any file soundfile reads (float, 24- or 32-bit WAV, FLAC, OGG),
mixed down to 16-bit mono; without soundfile, 16-bit PCM WAV through the
standard library.

The agent's audio is written on the conversation timeline: silence where the
agent is quiet, each utterance where it was played, cut where the user
interrupted it. With ``mix_input`` the user's audio is mixed in, so the file
sounds like the whole conversation.
"""

from __future__ import annotations

import asyncio
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from loguru import logger

from vocalis.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, AudioFormatError, AudioFrame, AudioResampler
from vocalis.providers.audio_output import AudioOutput
from vocalis.providers.transport import AudioSink, Transport
from vocalis.settings import ProviderSettings, provider_settings_config


@dataclass(frozen=True)
class WavAudio:
    """A whole WAV file's PCM (may be longer than one AudioFrame allows)."""

    data: bytes
    sample_rate: int
    channels: int

    @property
    def duration(self) -> float:
        return len(self.data) / (2 * self.channels * self.sample_rate)

    def frames(self, seconds: float) -> list[AudioFrame]:
        """Cut into frames of ``seconds`` (the last may be shorter)."""
        step = max(1, int(self.sample_rate * seconds)) * 2 * self.channels
        return [
            AudioFrame(self.data[i : i + step], self.sample_rate, self.channels) for i in range(0, len(self.data), step)
        ]


def read_wav(path: str | Path) -> WavAudio:
    """Read a 16-bit PCM WAV file (any rate, any channel count).

    Raises:
        AudioFormatError: Not a 16-bit PCM WAV, or a rate/channel count
            AudioFrame cannot carry.
    """
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise AudioFormatError(f"{path}: only 16-bit PCM WAV is supported")
            audio = WavAudio(wav.readframes(wav.getnframes()), wav.getframerate(), wav.getnchannels())
    except (wave.Error, EOFError) as exc:
        raise AudioFormatError(f"{path}: not a PCM WAV file ({exc})") from None
    AudioFrame(b"", audio.sample_rate, audio.channels)  # validates rate and channels
    return audio


def read_audio(path: str | Path) -> WavAudio:
    """Read an audio file as 16-bit PCM.

    16-bit PCM WAV is read with the standard library, as is; anything else
    goes through soundfile (when installed), mixed down to mono, and
    resampled with soxr if AudioFrame cannot carry its rate.

    Raises:
        AudioFormatError: Unreadable, or not 16-bit PCM WAV and soundfile
            is not installed.
    """
    try:
        return read_wav(path)
    except AudioFormatError as exc:
        wav_error = exc
    try:
        # Optional: the core needs no soundfile for 16-bit PCM WAV.
        import soundfile  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        raise AudioFormatError(
            f"{wav_error}; for float or 24-bit WAV, FLAC or OGG install soundfile: pip install soundfile"
        ) from None
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except RuntimeError as exc:  # soundfile's LibsndfileError is a RuntimeError
        raise AudioFormatError(f"{path}: not an audio file soundfile can read ({exc})") from None
    return _to_pcm16(samples, int(rate))


def _to_pcm16(samples: Any, rate: int) -> WavAudio:
    """Float samples (frames × channels) → mono int16 at a rate AudioFrame carries."""
    import numpy as np

    mono = np.nan_to_num(np.asarray(samples, dtype=np.float32).mean(axis=1))
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        import soxr

        mono = soxr.resample(mono, rate, 16_000, quality="HQ")
        rate = 16_000
    pcm = np.round(np.clip(mono, -1.0, 1.0) * 32767.0).astype("<i2")
    return WavAudio(pcm.tobytes(), rate, 1)


def write_wav(path: str | Path, samples: Any, sample_rate: int) -> None:
    """Write mono int16 samples to a WAV file."""
    import numpy as np

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(np.asarray(samples, dtype="<i2").tobytes())


class TimelineAudioOutput(AudioOutput):
    """Collects agent audio at the times it plays, relative to a start time."""

    def __init__(self, sample_rate: int = 24_000) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.origin = 0.0
        self._pieces: list[tuple[float, Any]] = []  # (start seconds, float32 samples)
        self._resampler = AudioResampler(sample_rate)
        self._cursor = 0.0

    def deliver(self, frame: AudioFrame) -> None:
        converted = self._resampler.push(frame)
        if converted is None:
            return
        now = asyncio.get_running_loop().time() - self.origin
        start = max(now, self._cursor)
        self._pieces.append((start, converted.to_numpy().astype("float32")))
        self._cursor = start + converted.duration

    def discard(self) -> None:
        # Drop everything the user had not heard yet.
        now = asyncio.get_running_loop().time() - self.origin
        kept = []
        for start, samples in self._pieces:
            if start >= now:
                continue
            limit = int((now - start) * self.sample_rate)
            kept.append((start, samples[:limit]))
        self._pieces = kept
        self._cursor = min(self._cursor, now)

    @property
    def pieces(self) -> list[tuple[float, Any]]:
        """The audio that played: ``(start seconds after origin, float32 samples)``, in order."""
        return list(self._pieces)

    def render(self, extra: list[tuple[float, Any]] | None = None) -> Any:
        """The timeline as int16 samples (agent audio, plus ``extra`` pieces)."""
        import numpy as np

        pieces = self._pieces + (extra or [])
        end = max((start + len(s) / self.sample_rate for start, s in pieces), default=0.0)
        out = np.zeros(int(end * self.sample_rate) + 1, dtype=np.float32)
        for start, samples in pieces:
            offset = int(round(start * self.sample_rate))
            out[offset : offset + len(samples)] += samples[: len(out) - offset]
        return np.clip(out, -32768, 32767).astype(np.int16)


class FileTransport(Transport):
    """Feeds an audio file to the session as the user's microphone; records the agent.

    Settings: ``input`` (audio file path or None; see :func:`read_audio`), ``output`` (WAV path or None),
    ``realtime`` (pace the input like a live microphone; off feeds it as fast
    as possible), ``tail`` (seconds of silence fed after the input so the
    last turn can end), ``mix_input`` (mix the user's audio into the output).
    """

    name: ClassVar[str] = "file"

    class Settings(ProviderSettings):
        model_config = provider_settings_config("transport", "file")
        input: Path | None = None
        output: Path | None = None
        realtime: bool = True
        tail: float = 2.0
        frame_seconds: float = 0.02
        mix_input: bool = False
        sample_rate: int = 24_000

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        settings: Any = self.settings
        self.audio_output: TimelineAudioOutput = TimelineAudioOutput(settings.sample_rate)
        self.input_finished = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._input_pieces: list[tuple[float, Any]] = []
        self._audio = read_audio(settings.input) if settings.input else None
        self._closed = False

    @property
    def input_duration(self) -> float:
        """Seconds of input audio (0 without an input file)."""
        return self._audio.duration if self._audio is not None else 0.0

    async def start(self, sink: AudioSink) -> None:
        loop = asyncio.get_running_loop()
        self.audio_output.origin = loop.time()
        if self._audio is None:
            self.input_finished.set()
            return
        self._task = loop.create_task(self._feed(sink, self._audio))

    async def _feed(self, sink: AudioSink, audio: WavAudio) -> None:
        settings: Any = self.settings
        loop = asyncio.get_running_loop()
        silence = AudioFrame.silence(settings.frame_seconds, audio.sample_rate, audio.channels)
        frames = audio.frames(settings.frame_seconds)
        frames += [silence] * int(settings.tail / settings.frame_seconds)
        mixer = AudioResampler(self.audio_output.sample_rate)
        start = loop.time()
        for index, frame in enumerate(frames):
            if frame.samples_per_channel == 0:
                continue
            sink.push_audio(frame)
            if settings.mix_input and index * settings.frame_seconds < audio.duration:
                converted = mixer.push(frame)  # streaming: no clicks at frame edges
                if converted is not None:
                    piece = converted.to_numpy().astype("float32")
                    self._input_pieces.append((loop.time() - self.audio_output.origin, piece))
            if settings.realtime:
                await asyncio.sleep(max(0.0, start + (index + 1) * settings.frame_seconds - loop.time()))
            elif index % 10 == 0:
                await asyncio.sleep(0)
        self.input_finished.set()
        logger.debug("input file fed: {:.2f} s", audio.duration)

    def save(self) -> Path | None:
        """Write the output WAV (if one is configured)."""
        settings: Any = self.settings
        if settings.output is None:
            return None
        samples = self.audio_output.render(self._input_pieces if settings.mix_input else None)
        write_wav(settings.output, samples, self.audio_output.sample_rate)
        return Path(settings.output)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.save()
