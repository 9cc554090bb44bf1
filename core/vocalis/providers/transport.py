"""Transport provider contract."""

from __future__ import annotations

from typing import ClassVar

from vocalis.providers.base import Provider, ProviderKind


class Transport(Provider):
    """Base class of transport providers."""

    kind: ClassVar[ProviderKind] = ProviderKind.TRANSPORT
