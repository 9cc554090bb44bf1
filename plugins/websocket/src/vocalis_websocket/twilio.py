"""Phone calls through Twilio Media Streams (a bidirectional ``<Connect><Stream>``).

Twilio opens a WebSocket to ``wss://host/twilio`` and sends JSON messages:
``connected``, then ``start`` (stream and call ids, media format, custom
parameters), then ``media`` every 20 ms (base64 8 kHz μ-law), ``dtmf``,
``mark`` (echoes of ours) and finally ``stop``. The agent's voice goes back
as ``media`` messages in 20 ms chunks; a ``mark`` follows each utterance, so
Twilio says when it has played it; ``clear`` drops Twilio's buffer on
barge-in.

Twilio cannot reliably put a query string on a stream URL, so the route is
public and the server's token is taken from ``?token=`` or from the
``token`` custom parameter of ``start`` (``<Parameter name="token" .../>``).
No session starts before the token checks out.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from loguru import logger

from vocalis.audio import AudioFrame
from vocalis.providers.transport import AudioSink
from vocalis.serve.server import AdmissionError
from vocalis.settings import provider_settings_config
from vocalis_websocket.audio_out import ChunkedAudioOutput
from vocalis_websocket.base import (
    CLOSE_POLICY_VIOLATION,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNSUPPORTED_DATA,
    SocketSettings,
    SocketTransport,
    new_socket,
    refuse,
)
from vocalis_websocket.g711 import ulaw_decode, ulaw_encode
from vocalis_websocket.outbox import dumps

if TYPE_CHECKING:
    from aiohttp import web

    from vocalis.serve.http import Routes
    from vocalis.serve.server import SessionServer
    from vocalis.session.agent_session import AgentSession

MULAW = "audio/x-mulaw"
_INBOUND_TRACKS = ("inbound", "inbound_track")


class TwilioAudioOutput(ChunkedAudioOutput):
    """Agent audio as Twilio ``media`` messages (μ-law).

    A ``mark`` follows each segment; ``clear`` goes out on barge-in.
    """

    def __init__(self, transport: TwilioTransport, sample_rate: int, chunk_seconds: float) -> None:
        super().__init__(sample_rate, chunk_seconds)
        self._transport = transport

    def send_chunk(self, pcm: bytes) -> None:
        payload = base64.b64encode(ulaw_encode(pcm)).decode("ascii")
        t = self._transport
        t.put(dumps({"event": "media", "streamSid": t.stream_sid, "media": {"payload": payload}}), audio=True)

    def send_clear(self) -> None:
        t = self._transport
        if t.outbox is not None:
            t.outbox.drop_audio()  # media (and marks) Twilio has not received yet
        t.put(dumps({"event": "clear", "streamSid": t.stream_sid}))

    def send_segment_end(self) -> None:
        t = self._transport
        name = f"segment-{len(t.marks_sent) + 1}"
        t.marks_sent.append(name)
        t.put(dumps({"event": "mark", "streamSid": t.stream_sid, "mark": {"name": name}}), audio=True)


class TwilioTransport(SocketTransport):
    """One Twilio Media Streams call.

    Settings (``VOCALIS_TRANSPORT_TWILIO_*``): ``path`` of the endpoint,
    ``start_timeout`` (seconds to wait for ``start`` before refusing),
    ``chunk_ms`` (agent audio per ``media`` message), ``heartbeat`` (seconds
    between WebSocket pings; None disables them), ``close_timeout``,
    ``max_queued_audio_bytes`` (agent audio queued for a connection that
    takes it slower than it is made; the oldest is dropped past it).

    Attributes:
        stream_sid: Twilio's id of the stream (``MZ...``).
        call_sid: Twilio's id of the call (``CA...``).
        custom_parameters: The ``<Parameter>`` values of the TwiML, without the token.
        marks_sent: Names of the marks sent after agent segments.
        marks_played: Names Twilio echoed back (played, or dropped by ``clear``).
        dtmf: Keys the caller pressed.
    """

    name: ClassVar[str] = "twilio"

    class Settings(SocketSettings):
        model_config = provider_settings_config("transport", "twilio")
        path: str = "/twilio"
        start_timeout: float = 10.0

    def __init__(
        self,
        ws: web.WebSocketResponse | None = None,
        *,
        stream_sid: str = "",
        call_sid: str = "",
        sample_rate: int = 8000,
        custom_parameters: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(ws, **kwargs)
        settings: Any = self.settings
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        self.sample_rate = sample_rate
        self.custom_parameters = {k: v for k, v in (custom_parameters or {}).items() if k != "token"}
        self.marks_sent: list[str] = []
        self.marks_played: list[str] = []
        self.dtmf: list[str] = []
        self.frames_in = 0
        self.audio_output: TwilioAudioOutput = TwilioAudioOutput(self, sample_rate, settings.chunk_ms / 1000)

    def send_event(self, event: str, payload: Mapping[str, object]) -> None:
        """Twilio has no channel for session events: they stay in the logs."""

    # -- inbound messages -----------------------------------------------------
    async def on_text(self, session: AgentSession, text: str) -> bool:
        message = _parse(text)
        if message is None:
            # Twilio has no channel for errors: the session's error event (and log) is all.
            session.report_error(self.label, "ignored a message that is not a JSON object")
            return True
        event = message.get("event")
        if event == "media":
            self._on_media(session, message.get("media"))
        elif event == "mark":
            mark = message.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            if isinstance(name, str):
                self.marks_played.append(name)
                logger.debug("{}: {} played", self.label, name)
        elif event == "dtmf":
            dtmf = message.get("dtmf")
            digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
            if isinstance(digit, str):
                self.dtmf.append(digit)
                logger.info("{}: the caller pressed {}", self.label, digit)
        elif event == "stop":
            logger.info("{}: call {} ended", self.label, self.call_sid)
            return False
        elif event not in ("connected", "start"):
            logger.debug("{}: ignored event {!r}", self.label, event)
        return True

    async def on_binary(self, session: AgentSession, data: bytes) -> bool:
        logger.warning("{}: ignored a binary message (Media Streams sends JSON text)", self.label)
        return True

    def _on_media(self, session: AgentSession, media: Any) -> None:
        if not isinstance(media, dict) or media.get("track", "inbound") not in _INBOUND_TRACKS:
            return  # e.g. the outbound track of a <Start><Stream track="both_tracks">
        payload = media.get("payload")
        try:
            if not isinstance(payload, str):
                raise TypeError("no payload")
            codes = base64.b64decode(payload, validate=True)
            frame = AudioFrame(ulaw_decode(codes), self.sample_rate)
        except (binascii.Error, TypeError, ValueError) as exc:  # AudioFormatError is a ValueError
            session.report_error(self.label, f"ignored a media message: {exc}")
            return
        if frame.samples_per_channel and self.sink is not None:
            self.frames_in += 1
            self.sink.push_audio(frame)

    async def start(self, sink: AudioSink) -> None:
        await super().start(sink)
        logger.info("{}: call {} (stream {}) connected", self.label, self.call_sid, self.stream_sid)

    # -- serving ------------------------------------------------------------
    @classmethod
    def add_routes(cls, routes: Routes, server: SessionServer) -> None:
        """Serve Media Streams at ``path`` (public: the token is checked here)."""
        settings: Any = cls.Settings()

        async def handler(request: web.Request) -> web.StreamResponse:
            return await cls.handle(request, server, settings)

        routes.get(settings.path, handler, public=True)

    @classmethod
    async def handle(cls, request: web.Request, server: SessionServer, settings: Any) -> web.StreamResponse:
        """One call: wait for ``start``, check the token, admit, run the session."""
        ws = new_socket(server, settings)
        await ws.prepare(request)
        query_token = request.query.get("token")
        start = await _wait_for_start(ws, settings.start_timeout)
        if start is None:
            if not ws.closed:
                await refuse(ws, CLOSE_POLICY_VIOLATION, "expected a start message")
            return ws
        body = start.get("start") if isinstance(start.get("start"), dict) else {}
        custom = body.get("customParameters") if isinstance(body.get("customParameters"), dict) else {}
        param_token = custom.get("token") if isinstance(custom.get("token"), str) else None
        if not (server.check_token(query_token) or server.check_token(param_token)):
            await refuse(ws, CLOSE_POLICY_VIOLATION, "a valid token is required")
            return ws
        stream_sid = start.get("streamSid") or body.get("streamSid")
        if not isinstance(stream_sid, str) or not stream_sid:
            await refuse(ws, CLOSE_PROTOCOL_ERROR, "start has no streamSid")
            return ws
        fmt = body.get("mediaFormat") if isinstance(body.get("mediaFormat"), dict) else {}
        rate = fmt.get("sampleRate", 8000)
        if fmt.get("encoding", MULAW) != MULAW or fmt.get("channels", 1) != 1 or not _valid_rate(rate):
            await refuse(ws, CLOSE_UNSUPPORTED_DATA, f"unsupported media format {json.dumps(fmt)}")
            return ws
        try:
            server.admit()
        except AdmissionError as exc:
            await refuse(ws, CLOSE_TRY_AGAIN_LATER, f"try again later: {exc}")
            return ws
        try:
            transport = cls(
                ws,
                stream_sid=stream_sid,
                call_sid=str(body.get("callSid", "")),
                sample_rate=int(rate),
                custom_parameters=custom,
                settings=settings,
            )
        except BaseException:
            server.release()
            raise
        await cls.run_session(server, transport)
        return ws


def _parse(text: str) -> dict[str, Any] | None:
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested too deeply
        return None
    return message if isinstance(message, dict) else None


def _valid_rate(rate: Any) -> bool:
    return isinstance(rate, int) and not isinstance(rate, bool) and 8000 <= rate <= 48000


async def _wait_for_start(ws: web.WebSocketResponse, timeout: float) -> dict[str, Any] | None:
    """The ``start`` message, or None if the socket closed or ``timeout`` passed first."""
    from aiohttp import WSMsgType

    try:
        async with asyncio.timeout(timeout):
            while True:
                msg = await ws.receive()
                if msg.type is WSMsgType.BINARY:
                    continue
                if msg.type is not WSMsgType.TEXT:
                    return None
                message = _parse(msg.data)
                if message is not None and message.get("event") == "start":
                    return message
                # "connected" (and anything sent too early) needs no answer.
    except TimeoutError:
        logger.info("twilio: no start message within {:g} s", timeout)
        return None
