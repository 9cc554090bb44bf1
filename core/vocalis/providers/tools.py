"""ToolSource provider contract."""

from __future__ import annotations

from typing import ClassVar

from vocalis.providers.base import Provider, ProviderKind


class ToolSource(Provider):
    """Base class of tools providers."""

    kind: ClassVar[ProviderKind] = ProviderKind.TOOLS
