"""Entry point of the ``cartesia`` plugin: registers its TTS provider."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vocalis import hookimpl

if TYPE_CHECKING:
    from vocalis.plugin.registry import ProviderRegister


@hookimpl
def vocalis_register_tts(register: ProviderRegister[Any]) -> None:
    """Register :class:`~vocalis_cartesia.tts.CartesiaTTS` as ``cartesia``."""
    from vocalis_cartesia.tts import CartesiaTTS

    register(CartesiaTTS)
