"""Entry point of the ``piper`` plugin: registers the Piper TTS provider."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vocalis import hookimpl


@hookimpl
def vocalis_register_tts(register: Callable[..., Any]) -> None:
    """Register :class:`vocalis_piper.tts.PiperTTS` as the default TTS."""
    from vocalis_piper.tts import PiperTTS

    register(PiperTTS, default=True)
