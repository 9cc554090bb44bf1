"""Silero VAD for Vocalis: streaming voice activity detection, offline."""

from __future__ import annotations

from vocalis.log import quiet_library
from vocalis_silero.vad import SileroVAD, SileroVADStream

__all__ = ["SileroVAD", "SileroVADStream"]

# Quiet as a library: the application (or the vocalis CLI) enables this package's log.
quiet_library(__name__)
