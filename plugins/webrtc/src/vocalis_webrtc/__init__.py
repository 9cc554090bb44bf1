"""Talk to a Vocalis agent from a browser: a WebRTC transport served by ``vocalis serve``.

The transport answers the browser's offer with aiortc, feeds the microphone
to the session, sends the agent's voice back on an audio track paced in real
time, and forwards the session's events (transcripts, agent state, latency)
as JSON on a data channel. The page it serves is plain HTML, CSS and
JavaScript shipped in this package.
"""

from __future__ import annotations

from vocalis.log import quiet_library
from vocalis_webrtc.audio import AgentAudioTrack, InboundAudio, TrackAudioOutput
from vocalis_webrtc.transport import OfferError, WebRTCTransport

__all__ = ["AgentAudioTrack", "InboundAudio", "OfferError", "TrackAudioOutput", "WebRTCTransport"]

# Quiet as a library: the application (or the vocalis CLI) enables this package's log.
quiet_library(__name__)
