"""TTS provider contract."""

from __future__ import annotations

from typing import ClassVar

from vocalis.providers.base import Provider, ProviderKind


class TTS(Provider):
    """Base class of tts providers."""

    kind: ClassVar[ProviderKind] = ProviderKind.TTS
