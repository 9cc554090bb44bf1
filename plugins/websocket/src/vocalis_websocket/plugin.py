"""Entry point of the ``websocket`` plugin: registers the serving transports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vocalis import hookimpl
from vocalis_websocket.pcm import PCMWebSocketTransport
from vocalis_websocket.twilio import TwilioTransport

if TYPE_CHECKING:
    from vocalis.plugin.registry import ProviderRegister
    from vocalis.providers.transport import Transport


@hookimpl
def vocalis_register_transport(register: ProviderRegister[Transport]) -> None:
    """Register :class:`TwilioTransport` as ``twilio`` and :class:`PCMWebSocketTransport` as ``websocket``."""
    register(TwilioTransport)
    register(PCMWebSocketTransport)
