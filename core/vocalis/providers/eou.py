"""EOU provider contract."""

from __future__ import annotations

from typing import ClassVar

from vocalis.providers.base import Provider, ProviderKind


class EOU(Provider):
    """Base class of eou providers."""

    kind: ClassVar[ProviderKind] = ProviderKind.EOU
