"""Smart Turn v3 for Vocalis: audio end-of-turn detection, offline."""

from __future__ import annotations

from vocalis_smartturn.eou import NO_AUDIO_PROBABILITY, SmartTurnEOU

__all__ = ["NO_AUDIO_PROBABILITY", "SmartTurnEOU"]
