"""Smart Turn v3 for Vocalis: audio end-of-turn detection, offline."""

from __future__ import annotations

from vocalis.log import quiet_library
from vocalis_smartturn.eou import NO_AUDIO_PROBABILITY, SmartTurnEOU

__all__ = ["NO_AUDIO_PROBABILITY", "SmartTurnEOU"]

# Quiet as a library: the application (or the vocalis CLI) enables this package's log.
quiet_library(__name__)
