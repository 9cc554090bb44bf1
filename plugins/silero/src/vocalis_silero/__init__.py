"""Silero VAD for Vocalis: streaming voice activity detection, offline."""

from __future__ import annotations

from vocalis_silero.vad import SileroVAD, SileroVADStream

__all__ = ["SileroVAD", "SileroVADStream"]
