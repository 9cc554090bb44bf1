"""Piper neural text-to-speech for Vocalis, run with onnxruntime."""

from __future__ import annotations

from vocalis.log import quiet_library
from vocalis_piper.tts import PiperTTS

__all__ = ["PiperTTS"]

# Quiet as a library: the application (or the vocalis CLI) enables this package's log.
quiet_library(__name__)
