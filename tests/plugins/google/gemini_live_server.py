"""A local Gemini Live API server (``BidiGenerateContent`` over WebSocket) for the google plugin's tests.

Written from the Live API reference (ai.google.dev/api/live) and guides
(get started, capabilities, session management, tool use):

- ``/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent``,
  the key in ``x-goog-api-key`` (or ``?key=``). After the setup, a wrong key
  closes the socket with 1007 "API key not valid. Please pass a valid API
  key.", a missing one with 1008 "Method doesn't allow unregistered callers"
  (the reasons the service gives); an unknown model: 1008; a bad setup or
  message: 1007 (invalid argument) and a recorded problem.
- The first client message is ``setup``, exactly once; the server answers
  ``setupComplete`` before anything else. Then ``realtimeInput`` (16 kHz PCM,
  base64, ``audio/pcm;rate=16000``; activity signals only when automatic
  detection is off), ``clientContent`` (turns; ``turnComplete`` starts an
  answer) and ``toolResponse`` (ids of open calls). JSON text frames.
- Server messages go as binary frames holding JSON, as the service sends
  them: ``serverContent`` (``modelTurn`` 24 kHz audio as ``inlineData``,
  ``outputTranscription``, ``inputTranscription``, ``generationComplete``,
  ``turnComplete``, ``interrupted``), ``toolCall``, ``goAway``,
  ``sessionResumptionUpdate`` (handles; a resumed setup restores the
  conversation), ``usageMetadata``.

Speech in the user's audio is detected by energy; the answers come from a
script of :class:`LiveTurn`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from gemini_live_connection import OUT_RATE, Connection, LiveTurn

__all__ = ["API_KEY", "MODEL", "OUT_RATE", "PATH", "LiveServer", "LiveTurn"]

API_KEY = "AIza-live-test-0123456789abcdefgh"
MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"


class LiveServer:
    """The server; ``async with LiveServer(turns) as server``.

    Args:
        turns: The scripted model turns, one per answer.
        seconds_per_char: Reply audio per character.
        chunk_ms: Audio per ``modelTurn`` message.
        pace: Seconds slept per second of audio sent (0: as fast as possible).
        first_audio_delay: Seconds before an answer's first message (the model thinking).
        text_frames: Send server messages as text frames instead of binary ones.
        complete_after_tool_call: Close a turn with ``turnComplete`` right after its ``toolCall``.
        voice_activity: Send ``voiceActivity`` signals when the user starts and stops speaking.
        realtime_playback: Like the service, hold ``turnComplete`` until the
            audio sent has had time to play (a barge-in meanwhile interrupts).

    Attributes:
        refuse_setup: Close every setup with this ``(code, reason)``.
        setup_replies: What answers an accepted setup (raw frames as bytes).
        handshake_status: Refuse every upgrade with this HTTP status.
    """

    def __init__(
        self,
        turns: list[LiveTurn] | None = None,
        *,
        seconds_per_char: float = 0.04,
        chunk_ms: int = 40,
        pace: float = 0.0,
        first_audio_delay: float = 0.0,
        text_frames: bool = False,
        complete_after_tool_call: bool = False,
        realtime_playback: bool = False,
        voice_activity: bool = False,
    ) -> None:
        self.turns = list(turns or [])
        self.models = (MODEL,)
        self.seconds_per_char, self.chunk_ms, self.pace = seconds_per_char, chunk_ms, pace
        self.first_audio_delay = first_audio_delay
        self.text_frames = text_frames
        self.complete_after_tool_call = complete_after_tool_call
        self.realtime_playback = realtime_playback
        self.voice_activity = voice_activity
        self.refuse_setup: tuple[int, str] | None = None
        self.setup_replies: list[bytes | dict[str, Any]] = [{"setupComplete": {}}]
        self.handshake_status: int | None = None
        self.received: list[tuple[int, dict[str, Any]]] = []
        self.sent: list[tuple[int, dict[str, Any]]] = []
        self.problems: list[str] = []
        self.handshakes: list[tuple[str, dict[str, str]]] = []
        self.connections: list[Connection] = []
        self.handles: dict[str, list[tuple[str, str]]] = {}
        self.mime_types: set[str] = set()
        self.interruptions = self.expired = 0
        self._ids: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    def new_id(self, prefix: str) -> str:
        self._ids[prefix] = self._ids.get(prefix, 0) + 1
        return f"{prefix}_{self._ids[prefix]:03d}"

    @property
    def url(self) -> str:
        """The API root a client is configured with (``http``: the socket is ``ws``)."""
        return f"http://127.0.0.1:{self.port}"

    def of_kind(self, kind: str) -> list[Any]:
        """The bodies of the client messages of one kind (``setup``, ``toolResponse``...), in order."""
        return [message[kind] for _, message in self.received if kind in message]

    async def __aenter__(self) -> LiveServer:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for connection in self.connections:
            if connection.closer is not None:
                connection.closer.cancel()
            if connection.response is not None:
                connection.response.cancel()
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.handshakes.append((request.path_qs, {k.lower(): v for k, v in request.headers.items()}))
        if self.handshake_status is not None:
            name = {403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}.get(
                self.handshake_status, "UNKNOWN"
            )
            body = {"error": {"code": self.handshake_status, "message": "scripted refusal", "status": name}}
            return web.json_response(body, status=self.handshake_status)
        if request.path != PATH:
            self.problems.append(f"bad path {request.path!r}")
            return web.Response(status=404)
        ws = web.WebSocketResponse(max_msg_size=16 * 2**20)
        await ws.prepare(request)
        connection = Connection(self, ws, request)
        self.connections.append(connection)
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        try:
            if key is None:
                await connection.receive()  # the real service reads the setup, then refuses
                await ws.close(code=1008, message=b"Method doesn't allow unregistered callers.")
            elif key != API_KEY:
                await connection.receive()
                await ws.close(code=1007, message=b"API key not valid. Please pass a valid API key.")
            else:
                await connection.run()
        finally:
            if connection.response is not None:
                connection.response.cancel()
            await ws.close()
        return ws
