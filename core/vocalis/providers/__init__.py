"""Provider base classes, one module per kind; the shared names are re-exported here."""

from __future__ import annotations

from vocalis.providers.base import ErrorKind, Provider, ProviderError, ProviderKind

__all__ = ["ErrorKind", "Provider", "ProviderError", "ProviderKind"]
