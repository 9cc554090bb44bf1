"""Local microphone and speaker as a Vocalis transport."""

from __future__ import annotations

from vocalis_console.devices import AudioDeviceError
from vocalis_console.transport import ConsoleTransport

__all__ = ["AudioDeviceError", "ConsoleTransport"]
