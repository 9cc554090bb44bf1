"""LLM provider contract."""

from __future__ import annotations

from typing import ClassVar

from vocalis.providers.base import Provider, ProviderKind


class LLM(Provider):
    """Base class of llm providers."""

    kind: ClassVar[ProviderKind] = ProviderKind.LLM
