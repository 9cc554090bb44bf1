"""Entry point of the ``webrtc`` plugin: registers the WebRTC transport."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vocalis import hookimpl

if TYPE_CHECKING:
    from vocalis.plugin.registry import ProviderRegister
    from vocalis_webrtc.transport import WebRTCTransport


@hookimpl
def vocalis_register_transport(register: ProviderRegister[WebRTCTransport]) -> None:
    """Register :class:`~vocalis_webrtc.WebRTCTransport` as ``webrtc``."""
    from vocalis_webrtc.transport import WebRTCTransport

    register(WebRTCTransport)
