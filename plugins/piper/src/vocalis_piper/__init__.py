"""Piper neural text-to-speech for Vocalis, run with onnxruntime."""

from __future__ import annotations

from vocalis_piper.tts import PiperTTS

__all__ = ["PiperTTS"]
