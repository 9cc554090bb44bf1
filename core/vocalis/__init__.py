"""Vocalis: real-time voice AI agents.

Public names are imported lazily so that ``import vocalis`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "hookimpl": "vocalis.hookspecs",
    "hookspec": "vocalis.hookspecs",
    "make_plugin_manager": "vocalis.plugins",
    "Registry": "vocalis.registry",
    "ProviderKind": "vocalis.providers.base",
    "Provider": "vocalis.providers.base",
    "ProviderError": "vocalis.providers.base",
    "ProviderSettings": "vocalis.settings",
    "VocalisSettings": "vocalis.settings",
    "provider_settings_config": "vocalis.settings",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from vocalis.hookspecs import hookimpl, hookspec
    from vocalis.plugins import make_plugin_manager
    from vocalis.providers.base import Provider, ProviderError, ProviderKind
    from vocalis.registry import Registry
    from vocalis.settings import ProviderSettings, VocalisSettings, provider_settings_config


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vocalis' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
