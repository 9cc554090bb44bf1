"""One browser connection: an aiortc peer connection carrying a session.

The browser sends its microphone as an Opus track and opens a data channel;
the transport answers its offer, feeds the decoded audio to the session,
sends the agent's voice back on an outbound track and the session's events
as JSON on the channel. When the browser leaves (the connection fails or
closes, the channel closes, or it says ``bye``) the session is closed with
reason ``"hangup"``; when the server ends the session (idle, shutdown) the
page gets a ``close`` message before the peer connection is closed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InvalidStateError
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from loguru import logger
from pydantic import Field, SecretStr

from vocalis.providers.transport import AudioSink, Transport
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis_webrtc.audio import AgentAudioTrack, InboundAudio, TrackAudioOutput
from vocalis_webrtc.messages import close_message, encode, event_message, parse_client_message

if TYPE_CHECKING:
    from vocalis.serve.http import Routes
    from vocalis.serve.server import SessionServer
    from vocalis.session.agent_session import AgentSession


class OfferError(ValueError):
    """The browser's offer cannot be answered (malformed SDP, no audio)."""


class WebRTCTransport(Transport):
    """A browser talking to an agent over WebRTC (aiortc), served by ``vocalis serve``.

    One instance per peer connection. ``vocalis serve`` mounts its routes
    (:meth:`add_routes`): ``GET /`` (the page), ``GET /webrtc/config`` (ICE servers
    for the page) and ``POST /webrtc/offer`` (signalling).

    Settings (environment prefix ``VOCALIS_TRANSPORT_WEBRTC_``): ``ice_servers``
    (STUN/TURN URLs; none needed on loopback or a LAN), ``ice_username`` and
    ``ice_credential`` (for the TURN URLs), ``connect_timeout`` (seconds
    for the browser to connect after the answer), ``close_timeout`` (seconds
    the final ``close`` message gets to reach the page), ``max_pending_events``
    (events kept until the data channel opens).
    """

    name: ClassVar[str] = "webrtc"

    class Settings(ProviderSettings):
        model_config = provider_settings_config("transport", "webrtc")
        ice_servers: list[str] = Field(default_factory=list)
        ice_username: str | None = None
        ice_credential: SecretStr | None = None
        connect_timeout: float = Field(default=20.0, gt=0)
        close_timeout: float = Field(default=1.0, ge=0)
        max_pending_events: int = Field(default=256, ge=1)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        settings: Any = self.settings
        self.track = AgentAudioTrack()
        self.audio_output: TrackAudioOutput = TrackAudioOutput(self.track)
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers(settings)))
        self.connected = asyncio.Event()
        self.left = False
        self.session: AgentSession | None = None
        self._channel: Any = None
        self._channel_closed = asyncio.Event()
        self._pending: deque[str] = deque(maxlen=settings.max_pending_events)
        self._sink: AudioSink | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.pc.on("track", self._on_track)
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_connection_state)

    @classmethod
    def add_routes(cls, routes: Routes, server: SessionServer) -> None:
        """Mount the page and the signalling endpoint on ``vocalis serve``'s app."""
        from vocalis_webrtc.signalling import add_webrtc_routes

        add_webrtc_routes(cls, routes, server)

    # -- signalling --------------------------------------------------------------
    async def accept(self, sdp: str) -> RTCSessionDescription:
        """Answer the browser's offer (ICE gathering completes before this returns).

        Raises:
            OfferError: The offer is malformed or carries no audio.
        """
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:
            raise OfferError(f"invalid offer: {exc}") from None
        if not any(t.kind == "audio" for t in self.pc.getTransceivers()):
            raise OfferError("the offer has no audio track")
        self.pc.addTrack(self.track)
        # aiortc's setLocalDescription gathers every candidate first, so the
        # answer is complete: no trickle ICE needed.
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription

    def attach(self, session: AgentSession) -> None:
        """Bind the session this connection carries (after it started)."""
        self.session = session
        if self.left:
            self._spawn(session.close(reason="hangup"))
        elif not self.connected.is_set():
            self._spawn(self._watch_connect())

    async def _watch_connect(self) -> None:
        timeout: float = self.settings.connect_timeout  # type: ignore[attr-defined]
        try:
            await asyncio.wait_for(self.connected.wait(), timeout)
        except TimeoutError:
            logger.warning("webrtc: the browser did not connect within {:g} s", timeout)
            self.hangup("connect timeout")

    # -- audio in ----------------------------------------------------------------
    async def start(self, sink: AudioSink) -> None:
        self._sink = sink

    def _on_track(self, track: MediaStreamTrack) -> None:
        logger.debug("webrtc: remote {} track", track.kind)
        # Every remote track is read, even one the session does not use:
        # aiortc queues received frames until they are read.
        self._spawn(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        inbound = InboundAudio()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind != "audio" or self._sink is None:
                continue
            try:
                converted = inbound.convert(frame)  # type: ignore[arg-type]
            except Exception as exc:
                logger.warning("webrtc: dropped an audio frame ({})", exc)
                continue
            if converted is not None:
                self._sink.push_audio(converted)

    # -- events out ----------------------------------------------------------------
    def send_event(self, event: str, payload: Mapping[str, object]) -> None:
        if not self._closed:
            self._send(encode(event_message(event, payload)))

    def _send(self, text: str) -> None:
        channel = self._channel
        if channel is not None and channel.readyState == "open":
            try:
                channel.send(text)
                return
            except InvalidStateError:
                pass
        # Not open yet: the first states arrive before the browser's channel does.
        self._pending.append(text)

    def _on_datachannel(self, channel: Any) -> None:
        if self._channel is not None:
            return  # the page opens one channel; extra ones are ignored
        self._channel = channel
        channel.on("message", self._on_message)
        channel.on("close", self._on_channel_close)
        if channel.readyState == "open":
            self._flush()
        else:
            channel.on("open", self._flush)

    def _flush(self) -> None:
        while self._pending and self._channel is not None and self._channel.readyState == "open":
            self._channel.send(self._pending.popleft())

    def _on_message(self, text: str | bytes) -> None:
        message = parse_client_message(text)
        if message is None:
            logger.debug("webrtc: ignored a malformed data channel message")
        elif message["type"] == "bye":
            self.hangup("bye")

    def _on_channel_close(self) -> None:
        self._channel_closed.set()
        self.hangup("data channel closed")

    # -- the browser leaving -------------------------------------------------------
    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        logger.debug("webrtc: connection {}", state)
        if state == "connected":
            self.connected.set()
        elif state in ("failed", "closed"):
            self.hangup(f"connection {state}")

    def hangup(self, why: str) -> None:
        """The browser left: close the session (once) with reason ``"hangup"``."""
        if self.left or self._closed:
            return
        self.left = True
        logger.info("webrtc: the browser left ({})", why)
        if self.session is not None:
            self._spawn(self.session.close(reason="hangup"))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- closing ---------------------------------------------------------------------
    async def aclose(self) -> None:
        """Tell the page why (unless it left), then close the peer connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if not self.left:
            await self._say_goodbye()
        self.track.stop()
        await self.pc.close()
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _say_goodbye(self) -> None:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            return
        reason = self.session.close_reason if self.session is not None else "closed"
        try:
            channel.send(encode(close_message(reason)))
            # Closing the channel resets its stream after the queued message
            # went out; the peer's acknowledgement says it arrived.
            channel.close()
        except InvalidStateError:
            return
        timeout: float = self.settings.close_timeout  # type: ignore[attr-defined]
        try:
            await asyncio.wait_for(self._channel_closed.wait(), timeout)
        except TimeoutError:
            logger.debug("webrtc: the page did not acknowledge the close in {:g} s", timeout)


def ice_servers(settings: Any) -> list[RTCIceServer]:
    """The configured STUN/TURN servers (an empty list: host candidates only).

    An explicit empty list matters: aiortc falls back to a public STUN
    server when given None.
    """
    servers = []
    for url in settings.ice_servers:
        if url.startswith("turn"):
            credential = settings.ice_credential.get_secret_value() if settings.ice_credential else None
            servers.append(RTCIceServer(urls=url, username=settings.ice_username, credential=credential))
        else:
            servers.append(RTCIceServer(urls=url))
    return servers


def browser_ice_servers(settings: Any) -> list[dict[str, Any]]:
    """The same servers in the shape the page's ``RTCPeerConnection`` takes."""
    return [
        {k: v for k, v in {"urls": s.urls, "username": s.username, "credential": s.credential}.items() if v}
        for s in ice_servers(settings)
    ]
