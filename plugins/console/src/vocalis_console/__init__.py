"""Local microphone and speaker as a Vocalis transport."""

from __future__ import annotations

from vocalis.log import quiet_library
from vocalis_console.devices import AudioDeviceError
from vocalis_console.transport import ConsoleTransport

__all__ = ["AudioDeviceError", "ConsoleTransport"]

# Quiet as a library: the application (or the vocalis CLI) enables this package's log.
quiet_library(__name__)
