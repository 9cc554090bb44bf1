"""VAD provider contract."""

from __future__ import annotations

from typing import ClassVar

from vocalis.providers.base import Provider, ProviderKind


class VAD(Provider):
    """Base class of vad providers."""

    kind: ClassVar[ProviderKind] = ProviderKind.VAD
