"""ElevenLabs for Vocalis: streaming TTS over the WebSocket input-streaming API, with the HTTP API as fallback.

Modules load on first use so that ``vocalis plugins`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from vocalis.log import quiet_library

_EXPORTS = {
    "ElevenLabsTTS": "vocalis_elevenlabs.tts",
    "ElevenLabsStream": "vocalis_elevenlabs.stream",
    "CharTiming": "vocalis_elevenlabs.timeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vocalis_elevenlabs' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


# Quiet as a library: the application (or the vocalis CLI) enables this package's log.
quiet_library(__name__)
