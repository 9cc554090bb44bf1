"""The built-in plugin: vendor-neutral providers that ship with the core."""

from __future__ import annotations

from vocalis.plugin.hookspecs import hookimpl
from vocalis.plugin.registry import ProviderRegister


@hookimpl
def vocalis_register_transport(register: ProviderRegister) -> None:  # type: ignore[type-arg]
    """The WAV-file transport (``vocalis talk``)."""
    from vocalis.transports.file import FileTransport

    register(FileTransport)


@hookimpl
def vocalis_register_session_store(register: ProviderRegister) -> None:  # type: ignore[type-arg]
    """The in-process session store (resume on the same worker)."""
    from vocalis.providers.session_store import MemorySessionStore

    register(MemorySessionStore)
