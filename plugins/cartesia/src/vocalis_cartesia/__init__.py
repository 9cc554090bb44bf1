"""Cartesia for Vocalis: streaming TTS over the WebSocket API with contexts.

Modules load on first use so that ``vocalis plugins`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from vocalis.log import quiet_library

_EXPORTS = {
    "CartesiaTTS": "vocalis_cartesia.tts",
    "CartesiaTTSStream": "vocalis_cartesia.stream",
    "WordTimestamp": "vocalis_cartesia.segments",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vocalis_cartesia' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


# Quiet as a library: the application (or the vocalis CLI) enables this package's log.
quiet_library(__name__)
