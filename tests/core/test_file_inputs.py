"""`--input` reads what soundfile reads; without it, 16-bit PCM WAV and a clear error.

The WAV files are written here with the standard library (16-, 24- and 32-bit
PCM, and IEEE float by hand), so the stdlib path and the "install soundfile"
error are tested in every environment; decoding through soundfile is tested
where soundfile is installed.
"""

from __future__ import annotations

import struct
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from vocalis.audio import AudioFormatError, AudioFrame
from vocalis.testing import run_virtual
from vocalis.transports.file import FileTransport, read_audio

RATE = 44_100


def signal(seconds: float = 0.5, rate: int = RATE) -> np.ndarray:
    """A 440 Hz sine at half scale, as float in -1..1."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def pcm_wav(path: Path, samples: np.ndarray, width: int, rate: int = RATE, channels: int = 1) -> Path:
    """Write integer PCM of ``width`` bytes per sample (1 channel, or the same signal on each)."""
    scale = 2 ** (8 * width - 1) - 1
    ints = np.round(np.repeat(samples, channels) * scale).astype("<i4")
    raw = b"".join(int(v).to_bytes(4, "little", signed=True)[:width] for v in ints)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return path


def float_wav(path: Path, samples: np.ndarray, rate: int = RATE, channels: int = 1) -> Path:
    """Write a WAVE_FORMAT_IEEE_FLOAT (format 3) file, which the wave module refuses."""
    data = np.repeat(samples.astype("<f4"), channels).tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * 4 * channels, 4 * channels, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def as_float(audio_data: bytes) -> np.ndarray:
    return np.frombuffer(audio_data, dtype="<i2").astype(np.float32) / 32767


@pytest.fixture
def no_soundfile(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import soundfile` raise ImportError.
    monkeypatch.setitem(sys.modules, "soundfile", None)


def test_16_bit_wav_is_read_without_soundfile(tmp_path: Path, no_soundfile: None) -> None:
    audio = read_audio(pcm_wav(tmp_path / "a.wav", signal(), 2, channels=2))
    assert (audio.sample_rate, audio.channels) == (RATE, 2)
    assert audio.duration == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("kind", ["24-bit", "float"])
def test_other_formats_without_soundfile_name_it(tmp_path: Path, no_soundfile: None, kind: str) -> None:
    path = tmp_path / "a.wav"
    pcm_wav(path, signal(), 3) if kind == "24-bit" else float_wav(path, signal())
    with pytest.raises(AudioFormatError, match=r"install soundfile: pip install soundfile"):
        read_audio(path)
    with pytest.raises(AudioFormatError, match="soundfile"):
        FileTransport(input=path)


def test_garbage_is_an_audio_format_error(tmp_path: Path) -> None:
    (tmp_path / "bad.wav").write_bytes(b"RIFF nonsense")
    with pytest.raises(AudioFormatError):
        read_audio(tmp_path / "bad.wav")


@pytest.fixture
def soundfile():
    return pytest.importorskip("soundfile")


@pytest.mark.parametrize("width", [3, 4])
def test_24_and_32_bit_wav_are_mixed_to_mono_16_bit(tmp_path: Path, soundfile, width: int) -> None:
    audio = read_audio(pcm_wav(tmp_path / "a.wav", signal(), width, channels=2))
    assert (audio.sample_rate, audio.channels) == (RATE, 1)
    assert np.abs(as_float(audio.data) - signal()).max() < 1e-3


def test_float_wav_is_clipped_and_cleaned(tmp_path: Path, soundfile) -> None:
    samples = signal()
    samples[:3] = [2.0, -2.0, np.nan]
    audio = read_audio(float_wav(tmp_path / "f.wav", samples, channels=3))
    got = as_float(audio.data)
    assert audio.channels == 1 and got[:3].tolist() == [1.0, -1.0, 0.0]
    assert np.abs(got[3:] - samples[3:]).max() < 1e-3


@pytest.mark.parametrize(("fmt", "tolerance"), [("FLAC", 1e-3), ("OGG", 0.1)])
def test_flac_and_ogg(tmp_path: Path, soundfile, fmt: str, tolerance: float) -> None:
    path = tmp_path / f"a.{fmt.lower()}"
    soundfile.write(str(path), np.stack([signal(), signal()], axis=1), 48_000 if fmt == "OGG" else RATE, format=fmt)
    audio = read_audio(path)
    assert audio.channels == 1 and audio.duration == pytest.approx(0.5 * RATE / audio.sample_rate, abs=0.01)
    if fmt == "FLAC":
        assert np.abs(as_float(audio.data) - signal()).max() < tolerance
    else:  # lossy: compare loudness, not samples
        assert np.sqrt(np.mean(as_float(audio.data) ** 2)) == pytest.approx(0.5 / np.sqrt(2), abs=tolerance)


def test_a_rate_audio_frames_cannot_carry_is_resampled(tmp_path: Path, soundfile) -> None:
    audio = read_audio(float_wav(tmp_path / "low.wav", signal(1.0, 4_000), rate=4_000))
    assert audio.sample_rate == 16_000 and audio.duration == pytest.approx(1.0, abs=0.01)


def test_file_transport_feeds_a_flac_file(tmp_path: Path, soundfile) -> None:
    path = tmp_path / "in.flac"
    soundfile.write(str(path), signal(1.0), RATE, subtype="PCM_24")
    frames: list[AudioFrame] = []

    class Sink:
        def push_audio(self, frame: AudioFrame) -> None:
            frames.append(frame)

    async def main() -> None:
        transport = FileTransport(input=path, tail=0.0)
        await transport.start(Sink())
        await transport.input_finished.wait()
        await transport.aclose()

    run_virtual(main())
    assert {(f.sample_rate, f.channels) for f in frames} == {(RATE, 1)}
    assert sum(f.duration for f in frames) == pytest.approx(1.0, abs=0.01)
