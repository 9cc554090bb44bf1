"""Test signals: a tone the fakes treat as speech, and their energy test."""

from __future__ import annotations

import math

# Imported with the test kit, not on first use: a first `import numpy` inside a
# test's event-loop callback (FakeTTS() in a coroutine) holds the loop ~0.3 s,
# more on a loaded machine, which the loop watchdog rightly counts as blocking.
import numpy as np

from vocalis.audio import AudioFrame


def tone(duration: float, sample_rate: int = 16_000, *, frequency: float = 220.0, amplitude: float = 0.3) -> AudioFrame:
    """A sine tone: what the fakes treat as speech."""
    t = np.arange(round(duration * sample_rate)) / sample_rate
    return AudioFrame.from_numpy(amplitude * np.sin(2 * math.pi * frequency * t), sample_rate)


def is_speech(frame: AudioFrame, threshold: int = 500) -> bool:
    """Energy test the fake VAD and STT use (peak amplitude above ``threshold``)."""
    samples = frame.to_numpy()
    return bool(len(samples)) and int(abs(samples.astype("int32")).max()) > threshold
