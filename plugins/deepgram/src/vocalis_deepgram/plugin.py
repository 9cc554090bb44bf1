"""Entry point of the ``deepgram`` plugin: registers its STT and TTS providers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vocalis import hookimpl

if TYPE_CHECKING:
    from vocalis.plugin.registry import ProviderRegister


@hookimpl
def vocalis_register_stt(register: ProviderRegister[Any]) -> None:
    """Register :class:`~vocalis_deepgram.stt.DeepgramSTT` as ``deepgram``."""
    from vocalis_deepgram.stt import DeepgramSTT

    register(DeepgramSTT)


@hookimpl
def vocalis_register_tts(register: ProviderRegister[Any]) -> None:
    """Register :class:`~vocalis_deepgram.tts.DeepgramTTS` as ``deepgram``."""
    from vocalis_deepgram.tts import DeepgramTTS

    register(DeepgramTTS)
