"""Entry point of the ``whisper`` plugin: registers the Whisper STT."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vocalis import hookimpl
from vocalis_whisper.stt import WhisperSTT

if TYPE_CHECKING:
    from vocalis.plugin.registry import ProviderRegister


@hookimpl
def vocalis_register_stt(register: ProviderRegister[WhisperSTT]) -> None:
    """Register :class:`WhisperSTT` as ``whisper``, the default STT."""
    register(WhisperSTT, default=True)
