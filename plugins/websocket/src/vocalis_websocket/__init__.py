"""Telephony and raw-PCM WebSocket transports served by ``vocalis serve``.

``/twilio`` speaks Twilio Media Streams (8 kHz μ-law in JSON messages);
``/ws`` carries raw 16-bit PCM for custom clients, with session events as
JSON text. Each connection gets its own session. aiohttp and numpy are
imported only when a connection is served.
"""

from __future__ import annotations

from vocalis.log import quiet_library
from vocalis_websocket.g711 import ulaw_decode, ulaw_encode
from vocalis_websocket.pcm import PCMWebSocketTransport
from vocalis_websocket.twilio import TwilioTransport

__all__ = ["PCMWebSocketTransport", "TwilioTransport", "ulaw_decode", "ulaw_encode"]

# Quiet as a library: the application (or the vocalis CLI) enables this package's log.
quiet_library(__name__)
