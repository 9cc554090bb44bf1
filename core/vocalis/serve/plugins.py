"""What ``vocalis serve`` takes from the installed plugins: transports and stores."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vocalis.plugin.registry import Registry
    from vocalis.providers.session_store import SessionStore
    from vocalis.providers.transport import Transport


def serving_transports(registry: Registry) -> list[type[Transport]]:
    """Transport classes that accept connections (have ``add_routes``)."""
    from vocalis.providers.transport import Transport

    return [
        e.cls
        for e in registry.entries("transport")
        if issubclass(e.cls, Transport) and callable(getattr(e.cls, "add_routes", None))
    ]


def session_store(url: str, registry: Registry) -> SessionStore:
    """The session store a ``--store`` URL names (``memory://``, ``redis://host:6379/0``...).

    Raises:
        ValueError: No installed store serves the URL's scheme.
    """
    from vocalis.providers.session_store import SessionStore

    scheme = url.partition("://")[0].lower() if "://" in url else url.lower()
    for entry in registry.entries("session_store"):
        if scheme in getattr(entry.cls, "schemes", ()):
            store = entry.cls(url=url) if "url" in entry.cls.Settings.model_fields else entry.cls()
            if isinstance(store, SessionStore):
                return store
    known = sorted({s for e in registry.entries("session_store") for s in getattr(e.cls, "schemes", ())})
    hint = " (install vocalis-redis for redis://)" if scheme.startswith("redis") else ""
    raise ValueError(f"no installed session store serves {scheme}:// URLs{hint}; known: {known}")
