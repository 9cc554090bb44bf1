"""RealtimeModel provider contract."""

from __future__ import annotations

from typing import ClassVar

from vocalis.providers.base import Provider, ProviderKind


class RealtimeModel(Provider):
    """Base class of realtime providers."""

    kind: ClassVar[ProviderKind] = ProviderKind.REALTIME
