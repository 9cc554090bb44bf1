"""Entry point of the ``example`` plugin: registers its STT and its TTS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vocalis import hookimpl


@hookimpl
def vocalis_register_stt(register: Callable[..., Any]) -> None:
    """Register :class:`~vocalis_example.stt.ExampleSTT` as ``example`` (alias ``tones``)."""
    # Imported here, not at the top: hooks run whenever a plugin manager is
    # built, and a plugin only pays for its providers' imports when it is used.
    from vocalis_example.stt import ExampleSTT

    register(ExampleSTT, aliases=["tones"])


@hookimpl
def vocalis_register_tts(register: Callable[..., Any]) -> None:
    """Register :class:`~vocalis_example.tts.ExampleTTS` as ``example`` (alias ``tones``)."""
    from vocalis_example.tts import ExampleTTS

    register(ExampleTTS, aliases=["tones"])
