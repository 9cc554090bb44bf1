"""One Gemini Live conversation as a :class:`~vocalis.providers.realtime.RealtimeSession`.

The conversation outlives its WebSockets. The server sends
``sessionResumptionUpdate`` handles as it goes and ``goAway`` before it ends
a connection (about every ten minutes); the session then opens a new socket
whose ``setup`` carries the latest handle, at the next moment no turn is in
progress (or just before the deadline), and carries on: the server restores
the conversation, the stream of events never ends. A connection that drops
(1006, 1011...) is resumed the same way when a handle exists; otherwise, and
after a refused resumption, the stream fails with a labelled recoverable
error and the pipeline reconnects with the history.

Client messages go through one queue, in order, to whichever socket is live;
one a socket died under is sent again on the next.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.audio import AudioFrame, AudioResampler
from vocalis.chat.formats import JSONObject
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.llm import ToolCallRequest
from vocalis.providers.realtime import RealtimeEvent, RealtimeEventType, RealtimeSession
from vocalis_google.contents import function_response
from vocalis_google.errors import api_error, close_error, parse_duration, parse_error
from vocalis_google.live_events import TurnTracker

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from vocalis_google.live import GeminiLive

INPUT_RATE = 16_000
_CLOSE: dict[str, Any] = {}  # the writer's signal to close the socket
_SERVER_MESSAGES = frozenset(  # what a server message may hold, besides an ``error`` of a gateway
    "setupComplete serverContent toolCall toolCallCancellation goAway sessionResumptionUpdate usageMetadata "
    "voiceActivity voiceActivityDetectionSignal error".split()
)
_MAX_BACKLOG = 500  # about 10 s of 20 ms frames: a stalled socket must not grow memory forever


def _user_turn(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


class GeminiLiveSession(RealtimeSession):
    """A live conversation with Gemini; built by :meth:`GeminiLive.connect`.

    Attributes:
        errors: Error messages the server sent that did not end the session.
        usage: Token counts the server reported, summed (``promptTokenCount``...).
        resumptions: How many times the conversation moved to a new socket.
    """

    def __init__(self, model: GeminiLive, setup: JSONObject, history: list[JSONObject]) -> None:
        super().__init__(model.label)
        self._model = model
        self._setup = setup
        self._history = history
        s = model.settings
        self._manual = not s.automatic_activity_detection
        self._tracker = TurnTracker(self.send, model.label, text_parts=not s.output_transcription)
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._inflight: dict[str, Any] | None = None
        self._resampler = AudioResampler(INPUT_RATE)
        self._ws: ClientConnection | None = None
        self._handle: str | None = None
        self._resume = asyncio.Event()
        self._resume_due = False
        self._handle_fresh = False  # the latest handle came while nothing was under way
        self._deadline: asyncio.TimerHandle | None = None
        self._open_calls: dict[str, str] = {}  # id -> name: issued on this socket, unanswered
        self._cancelled: set[str] = set()
        self._responses: list[dict[str, Any]] = []  # function responses waiting for create_response
        self._in_activity = False
        self._closing = False
        self._backlog_warned = False
        self.errors: list[ProviderError] = []
        self.usage: dict[str, int] = {}
        self.resumptions = 0

    async def start(self) -> None:
        """Open the first socket (``setup`` answered by ``setupComplete``), then run.

        Raises:
            ProviderError: The server refused, closed or could not be reached.
        """
        self._ws = await self._model.dial(self._setup, None)
        if self._history:
            self._post({"clientContent": {"turns": self._history, "turnComplete": False}})
        self.start_task(self._run())

    # -- client messages ----------------------------------------------------------------
    def _post(self, message: dict[str, Any]) -> None:
        if self._closed or self._finished or self._closing:
            raise self._model.error("the realtime session has ended", recoverable=False)
        self._handle_fresh = False  # the conversation moved on from it
        if "clientContent" in message or "activityStart" in message.get("realtimeInput", {}):
            # It stops the model's turn (the API says so of both): the
            # ``interrupted`` that answers it is ours, not the user's speech.
            self._tracker.interrupting()
        self._outbox.put_nowait(message)

    def push_audio(self, frame: AudioFrame) -> None:
        if self._closed or self._finished or self._closing:
            return
        converted = self._resampler.push(frame)
        if converted is None or not converted.data:
            return
        if self._outbox.qsize() >= _MAX_BACKLOG:
            if not self._backlog_warned:
                self._backlog_warned = True
                logger.warning("{}: the connection is not keeping up; dropping audio", self.label)
            return
        self._backlog_warned = False
        if self._manual and not self._in_activity:
            self._in_activity = True
            # Not through _post: the user's audio starting is what a barge-in is.
            self._outbox.put_nowait({"realtimeInput": {"activityStart": {}}})
        blob = {"data": base64.b64encode(converted.data).decode(), "mimeType": f"audio/pcm;rate={INPUT_RATE}"}
        self._outbox.put_nowait({"realtimeInput": {"audio": blob}})

    async def send_text(self, text: str) -> None:
        self._post({"clientContent": {"turns": [_user_turn(text)], "turnComplete": False}})

    async def create_response(self, instructions: str | None = None) -> None:
        """Ask for an answer: the tools' results, the end of the user's
        activity (manual detection), or a completed turn."""
        if instructions and (self._responses or self._in_activity):
            self._post({"clientContent": {"turns": [_user_turn(instructions)], "turnComplete": False}})
            instructions = None
        if self._responses:
            responses, self._responses = self._responses, []
            self._post({"toolResponse": {"functionResponses": responses}})
        elif self._in_activity:
            self._in_activity = False
            self._post({"realtimeInput": {"activityEnd": {}}})
        else:
            content: dict[str, Any] = {"turnComplete": True}
            if instructions:
                content["turns"] = [_user_turn(instructions)]
            self._post({"clientContent": content})
        self._tracker.expect()

    async def cancel_response(self, *, played_seconds: float | None = None) -> None:
        """Stop the answer where the user cut it.

        Gemini has no cancel message: with manual activity detection the
        start of the user's activity interrupts; otherwise any client
        message does, and the one sent says what the user actually heard
        (the server's context holds all the model said). The server's
        ``interrupted`` in answer is not reported as the user's speech.
        """
        generating = self._tracker.cancel()
        if self._manual:
            if not self._in_activity:
                self._in_activity = True
                self._post({"realtimeInput": {"activityStart": {}}})
            return
        if not self._model.settings.report_interruptions or played_seconds is None:
            return
        heard, everything = self._tracker.heard(played_seconds)
        if everything and not generating:
            return
        note = (
            f'The user interrupted you; they heard only: "{heard}"'
            if heard
            else "The user interrupted you before hearing your answer."
        )
        self._post({"clientContent": {"turns": [_user_turn(f"({note})")], "turnComplete": False}})

    async def send_tool_output(self, call_id: str, output: str, *, is_error: bool = False) -> None:
        if call_id in self._cancelled:
            logger.debug("{}: dropping the output of cancelled call {}", self.label, call_id)
            return
        name = self._open_calls.pop(call_id, None)
        if name is None:
            # Made on a connection since replaced: this one has no such call.
            outcome = "failed" if is_error else "returned"
            note = _user_turn(f"(The tool call {call_id} {outcome}: {output})")
            self._post({"clientContent": {"turns": [note], "turnComplete": False}})
            return
        response = {"id": call_id, "name": name, "response": function_response(output, is_error=is_error)}
        self._responses.append(response)

    async def update_instructions(self, instructions: str) -> None:
        """Tell the model its new instructions (a Live session's
        ``systemInstruction`` is fixed at setup)."""
        note = _user_turn(f"(New instructions from now on: {instructions})")
        self._post({"clientContent": {"turns": [note], "turnComplete": False}})

    def _on_end_input(self) -> None:
        if not self._closing:
            self._closing = True
            self._outbox.put_nowait(_CLOSE)

    async def aclose(self) -> None:
        self._closing = True
        await super().aclose()
        # A worker cancelled before its first step never ran its finally.
        self._cancel_deadline()
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    # -- the sockets ---------------------------------------------------------------
    async def _run(self) -> None:
        try:
            while await self._serve():
                await self._switch()
        finally:
            self._cancel_deadline()
            ws, self._ws = self._ws, None
            if ws is not None:
                with contextlib.suppress(Exception):  # a dead socket may fail to close; it is gone either way
                    await ws.close()

    async def _serve(self) -> bool:
        """Run the live socket until it must be replaced (True) or the session ends (False)."""
        ws = self._ws
        assert ws is not None
        loop = asyncio.get_running_loop()
        reader, writer = loop.create_task(self._read(ws)), loop.create_task(self._write(ws))
        resume = loop.create_task(self._resume.wait())
        try:
            done, _ = await asyncio.wait({reader, writer, resume}, return_when=asyncio.FIRST_COMPLETED)
            if resume in done and reader not in done:
                return True
            if writer in done:
                if (failure := writer.exception()) is not None:
                    raise failure
                if writer.result():
                    return False  # the input ended: closed cleanly
            try:
                await reader  # the socket closed: the reader says how
            except ProviderError as exc:
                if not exc.recoverable or self._handle is None or not self._model.settings.session_resumption:
                    raise
                logger.warning("{}: {}; resuming the session", self.label, exc)
                return True
            return False
        finally:
            for task in (reader, writer, resume):
                task.cancel()
            await asyncio.wait({reader, writer, resume})

    async def _switch(self) -> None:
        """Move the conversation to a new socket with the latest handle."""
        self._cancel_deadline()
        self._resume.clear()
        self._resume_due = self._handle_fresh = False
        self._tracker.abort()  # a turn cut by a drop is lost with its socket
        old, self._ws = self._ws, None
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()
        # The new socket never made the old one's calls: their results are not for it.
        self._cancelled.update(self._open_calls)
        self._open_calls.clear()
        self._responses = []
        if self._inflight is not None and "toolResponse" in self._inflight:
            self._inflight = None
        self._in_activity = False  # manual detection: the next audio opens a new activity
        try:
            self._ws = await self._model.dial(self._setup, self._handle)
        except ProviderError as exc:
            if exc.recoverable or exc.kind is not ErrorKind.BAD_REQUEST:
                raise
            # The handle is refused (expired, unknown): a new session with the
            # history carries on, so a reconnect may help.
            raise ProviderError(exc.args[0], provider=exc.provider, kind=exc.kind) from exc
        self.resumptions += 1
        logger.info("{}: session resumed on a new connection", self.label)

    async def _write(self, ws: ClientConnection) -> bool:
        """Send queued messages; True once the input ended (socket closed), False if it died."""
        from websockets.exceptions import ConnectionClosed

        while True:
            if self._inflight is None:
                self._inflight = await self._outbox.get()
            message = self._inflight
            if message is _CLOSE:
                await ws.close()
                return True
            try:
                await ws.send(json.dumps(message))
            except ConnectionClosed:
                return False  # kept in flight: the next socket sends it
            self._inflight = None

    async def _read(self, ws: ClientConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        while True:
            try:
                raw = await ws.recv()
            except ConnectionClosed as exc:
                if self._closing:
                    return
                frame = exc.rcvd
                raise close_error(self._model, frame.code if frame else None, frame.reason if frame else "") from None
            if not raw:
                continue  # an empty frame carries nothing
            try:
                message = json.loads(raw)
            except ValueError:
                logger.warning("{}: ignoring a server message that is not JSON", self.label)
                continue
            if isinstance(message, dict):
                self._on_message(message)
            else:
                logger.debug("{}: ignoring a server message that is not an object", self.label)

    # -- server messages ------------------------------------------------------------------
    def _on_message(self, message: dict[str, Any]) -> None:
        if unknown := message.keys() - _SERVER_MESSAGES:
            # A newer API's message: what we know of it is still handled.
            logger.debug("{}: ignoring server message fields {}", self.label, sorted(unknown))
        failure = parse_error(message)
        if failure is not None:
            error = api_error(self._model, failure, where="server error")
            if not error.recoverable:
                raise error
            self.errors.append(error)
            self.send(RealtimeEvent(RealtimeEventType.ERROR, text=str(error), error=error))
        if isinstance(activity := message.get("voiceActivity"), dict):
            self._tracker.on_voice_activity(activity)
        if isinstance(content := message.get("serverContent"), dict):
            self._tracker.on_server_content(content)
        if isinstance(call := message.get("toolCall"), dict):
            self._on_tool_call(call)
        if isinstance(cancelled := message.get("toolCallCancellation"), dict):
            for call_id in cancelled.get("ids") or []:
                self._open_calls.pop(str(call_id), None)
                self._cancelled.add(str(call_id))
            self._responses = [r for r in self._responses if r["id"] not in self._cancelled]
        fresh = False
        if isinstance(update := message.get("sessionResumptionUpdate"), dict):
            if update.get("resumable") and update.get("newHandle"):
                self._handle, fresh = str(update["newHandle"]), True
        if isinstance(usage := message.get("usageMetadata"), dict):
            for key, value in usage.items():
                if isinstance(value, int):
                    self.usage[key] = self.usage.get(key, 0) + value
        if isinstance(away := message.get("goAway"), dict):
            # No readable time left: the server may close at any moment.
            self._on_go_away(min(3600.0, parse_duration(away.get("timeLeft"))))
        # A handle given while nothing is under way holds the whole conversation;
        # resuming from an older one would lose what happened since.
        idle = self._tracker.idle and not self._open_calls and not self._responses
        self._handle_fresh = idle and (fresh or self._handle_fresh)
        if self._resume_due and self._handle_fresh:
            self._resume.set()

    def _on_tool_call(self, call: dict[str, Any]) -> None:
        requests: list[ToolCallRequest] = []
        for index, item in enumerate(call.get("functionCalls") or []):
            if not isinstance(item, dict) or not item.get("name"):
                continue
            call_id = str(item.get("id") or f"call_{self._tracker.response_id}_{index}")
            args = item.get("args")
            self._open_calls[call_id] = str(item["name"])
            requests.append(
                ToolCallRequest(call_id, str(item["name"]), json.dumps(args if isinstance(args, dict) else {}))
            )
        if requests:
            self._tracker.on_tool_call(requests)

    def _on_go_away(self, seconds: float) -> None:
        if self._handle is None or not self._model.settings.session_resumption:
            logger.warning(
                "{}: the server closes this connection in {:g} s and it cannot be resumed", self.label, seconds
            )
            return
        logger.info("{}: the server closes this connection in {:g} s; moving at the next pause", self.label, seconds)
        self._resume_due = True
        if self._deadline is None:
            # Resume anyway shortly before the deadline, mid-turn if need be.
            margin = min(5.0, seconds / 3)
            self._deadline = asyncio.get_running_loop().call_later(max(0.0, seconds - margin), self._resume.set)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
