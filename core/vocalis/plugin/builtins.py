"""The built-in plugin: vendor-neutral providers that ship with the core."""

from __future__ import annotations

from vocalis.plugin.hookspecs import hookimpl
from vocalis.plugin.registry import ProviderRegister


@hookimpl
def vocalis_register_transport(register: ProviderRegister) -> None:  # type: ignore[type-arg]
    """The WAV-file transport (``vocalis talk``)."""
    from vocalis.transports.file import FileTransport

    register(FileTransport)
