"""STT provider contract."""

from __future__ import annotations

from typing import ClassVar

from vocalis.providers.base import Provider, ProviderKind


class STT(Provider):
    """Base class of stt providers."""

    kind: ClassVar[ProviderKind] = ProviderKind.STT
