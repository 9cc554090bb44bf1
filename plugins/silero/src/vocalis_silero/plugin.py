"""Entry point of the ``silero`` plugin: registers the Silero VAD."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vocalis import hookimpl
from vocalis_silero.vad import SileroVAD

if TYPE_CHECKING:
    from vocalis.plugin.registry import ProviderRegister


@hookimpl
def vocalis_register_vad(register: ProviderRegister[SileroVAD]) -> None:
    """Register :class:`SileroVAD` as ``silero``, the default VAD."""
    register(SileroVAD, default=True)
