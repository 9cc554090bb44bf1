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
No session starts before the token checks out. A ``session`` custom
parameter names a dropped session to resume (1-128 characters of
``[A-Za-z0-9_.:-]``; anything else is refused with 1008 "invalid session
id"). The fields of ``start`` are bounded (see
:mod:`vocalis_websocket.twilio_start`), and so are mark names
(``max_mark_chars``) and how many marks and keys are remembered.

Bad messages (not JSON, bad base64, a mark or key that is not one) are
logged and reported as the session's ``error`` events, rate-limited; only
``max_bad_messages`` of them in a row end the call (1008).
"""

from __future__ import annotations

import base64
import binascii
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
    CLOSE_TRY_AGAIN_LATER,
    SocketSettings,
    SocketTransport,
    connection_log,
    guarded,
    new_socket,
    refuse,
)
from vocalis_websocket.g711 import ulaw_decode, ulaw_encode
from vocalis_websocket.outbox import dumps
from vocalis_websocket.twilio_start import Refusal, parse, read_start, start_token, wait_for_start

if TYPE_CHECKING:
    from aiohttp import web

    from vocalis.serve.http import Routes
    from vocalis.serve.server import SessionServer
    from vocalis.session.agent_session import AgentSession
    from vocalis_websocket.throttle import ThrottledLog

_INBOUND_TRACKS = ("inbound", "inbound_track")
_DTMF_KEYS = frozenset("0123456789*#ABCD")
_MAX_REMEMBERED = 1000  # marks and keys kept per call: a peer echoing marks in a loop cannot grow memory


def _remember(items: list[str], item: str) -> None:
    items.append(item)
    if len(items) > _MAX_REMEMBERED:
        del items[0]


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
    takes it slower than it is made; the oldest is dropped past it),
    ``max_sid_chars``, ``max_parameters``, ``max_parameter_chars`` (bounds
    on ``start``), ``max_mark_chars`` (longest mark name taken),
    ``open_timeout``, ``log_burst``, ``log_interval`` and
    ``max_bad_messages`` (see :class:`~vocalis_websocket.base.SocketTransport`).

    Attributes:
        stream_sid: Twilio's id of the stream (``MZ...``).
        call_sid: Twilio's id of the call (``CA...``).
        custom_parameters: The ``<Parameter>`` values of the TwiML, without
            ``token`` and ``session``.
        marks_sent: Names of the marks sent after agent segments.
        marks_played: Names Twilio echoed back (played, or dropped by
            ``clear``; the last 1000).
        dtmf: Keys the caller pressed (the last 1000).
    """

    name: ClassVar[str] = "twilio"

    class Settings(SocketSettings):
        model_config = provider_settings_config("transport", "twilio")
        path: str = "/twilio"
        start_timeout: float = 10.0
        max_sid_chars: int = 64
        max_parameters: int = 32
        max_parameter_chars: int = 256
        max_mark_chars: int = 64

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
        self.custom_parameters = {k: v for k, v in (custom_parameters or {}).items() if k not in ("token", "session")}
        self.marks_sent: list[str] = []
        self.marks_played: list[str] = []
        self.dtmf: list[str] = []
        self.frames_in = 0
        self.audio_output: TwilioAudioOutput = TwilioAudioOutput(self, sample_rate, settings.chunk_ms / 1000)

    def send_event(self, event: str, payload: Mapping[str, object]) -> None:
        """Twilio has no channel for session events: they stay in the logs."""
        if event == "session":
            logger.info(
                "{}: call {} is session {} ({})",
                self.label,
                self.call_sid,
                payload.get("session_id"),
                "resumed" if payload.get("resumed") else "new",
            )

    # -- inbound messages -----------------------------------------------------
    async def on_text(self, session: AgentSession, text: str) -> bool:
        message = parse(text)
        if message is None:
            # Twilio has no channel for errors: the session's error event (and log) is all.
            return self.bad_message(session, "ignored a message that is not a JSON object")
        event = message.get("event")
        if event == "media":
            return self._on_media(session, message.get("media"))
        if event == "mark":
            mark = message.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            limit: int = getattr(self.settings, "max_mark_chars", 64)
            if not isinstance(name, str) or not 0 < len(name) <= limit:
                return self.bad_message(session, f"ignored a mark without a name of 1 to {limit} characters")
            self.good_message()
            _remember(self.marks_played, name)
            logger.debug("{}: {!r} played", self.label, name)
        elif event == "dtmf":
            dtmf = message.get("dtmf")
            digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
            if not isinstance(digit, str) or digit not in _DTMF_KEYS:
                return self.bad_message(session, "ignored a dtmf message without a key (0-9, *, #, A-D)")
            self.good_message()
            _remember(self.dtmf, digit)
            logger.info("{}: the caller pressed {}", self.label, digit)
        elif event == "stop":
            logger.info("{}: call {} ended", self.label, self.call_sid)
            return False
        elif event not in ("connected", "start"):
            logger.debug("{}: ignored event {!r}", self.label, str(event)[:40])  # new events must not end calls
        return True

    async def on_binary(self, session: AgentSession, data: bytes) -> bool:
        return self.bad_message(session, "ignored a binary message (Media Streams sends JSON text)")

    def _on_media(self, session: AgentSession, media: Any) -> bool:
        if not isinstance(media, dict) or media.get("track", "inbound") not in _INBOUND_TRACKS:
            return True  # e.g. the outbound track of a <Start><Stream track="both_tracks">
        payload = media.get("payload")
        try:
            if not isinstance(payload, str):
                raise TypeError("no payload")
            codes = base64.b64decode(payload, validate=True)
            frame = AudioFrame(ulaw_decode(codes), self.sample_rate)
        except (binascii.Error, TypeError, ValueError) as exc:  # AudioFormatError is a ValueError
            return self.bad_message(session, f"ignored a media message: {str(exc)[:80]}")
        self.good_message()
        if frame.samples_per_channel and self.sink is not None:
            self.frames_in += 1
            self.sink.push_audio(frame)
        return True

    async def start(self, sink: AudioSink) -> None:
        await super().start(sink)
        logger.info("{}: call {} (stream {}) connected", self.label, self.call_sid, self.stream_sid)

    # -- serving ------------------------------------------------------------
    @classmethod
    def add_routes(cls, routes: Routes, server: SessionServer) -> None:
        """Serve Media Streams at ``path`` (public: the token is checked here)."""
        settings: Any = cls.Settings()
        log = connection_log(cls.name, settings)  # one per endpoint: refusals and failures, rate-limited

        async def handler(request: web.Request) -> web.StreamResponse:
            return await cls.handle(request, server, settings, log)

        routes.get(settings.path, handler, public=True)

    @classmethod
    async def handle(
        cls, request: web.Request, server: SessionServer, settings: Any, log: ThrottledLog | None = None
    ) -> web.StreamResponse:
        """One call: wait for ``start``, check the token and fields, admit, run the session."""
        ws = new_socket(server, settings)
        log = log or connection_log(cls.name, settings)
        return await guarded(ws, cls._accept(request, ws, server, settings, log), log)

    @classmethod
    async def _accept(
        cls, request: web.Request, ws: web.WebSocketResponse, server: SessionServer, settings: Any, log: ThrottledLog
    ) -> None:
        await ws.prepare(request)
        query_token = request.query.get("token")
        start = await wait_for_start(ws, settings.start_timeout, settings.max_bad_messages)
        if not isinstance(start, dict):
            if not ws.closed:
                await refuse(ws, CLOSE_POLICY_VIOLATION, start or "expected a start message", log)
            return
        # The token first: nothing else of an unauthenticated caller is looked at.
        if not (server.check_token(query_token) or server.check_token(start_token(start))):
            await refuse(ws, CLOSE_POLICY_VIOLATION, "a valid token is required", log)
            return
        info = read_start(start, settings, cls.name)
        if isinstance(info, Refusal):
            await refuse(ws, info.code, info.reason, log)
            return
        try:
            server.admit()
        except AdmissionError as exc:
            await refuse(ws, CLOSE_TRY_AGAIN_LATER, f"try again later: {exc}", log)
            return
        try:
            transport = cls(
                ws,
                stream_sid=info.stream_sid,
                call_sid=info.call_sid,
                sample_rate=info.sample_rate,
                custom_parameters=info.custom_parameters,
                settings=settings,
            )
        except BaseException:
            server.release()
            raise
        await cls.run_session(server, transport, resume_id=info.resume_id)
