"""One client socket of :class:`gemini_live_server.LiveServer`: the Live protocol as the service speaks it.

The setup, the client messages after it (checked with
:mod:`gemini_live_shapes`), energy-based speech detection, scripted answers
(:class:`LiveTurn`), interruptions, tool calls, resumption handles and goAway.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import WSMsgType, web
from gemini_live_shapes import (
    check_client_content,
    check_realtime_input,
    check_setup,
    check_tool_response,
    message_kind,
)

from vocalis.testing import tone

if TYPE_CHECKING:
    from gemini_live_server import LiveServer

OUT_RATE = 24_000


@dataclass
class LiveTurn:
    """One scripted model turn.

    Attributes:
        heard: What the user's speech before it is transcribed as.
        reply: The spoken answer (audio plus output transcription).
        tool_calls: ``(name, args)`` calls made instead of answering.
        go_away: Announce the connection's end this many seconds ahead: after
            the turn, or before it with ``go_away_first``.
        go_away_first: Send the ``goAway`` before the turn's first message.
        drop_after: Cut the TCP connection after this many audio chunks.
        hold_after: Stop after this many audio chunks until interrupted.
        error: Send this ``error`` object (``code``, ``message``, ``status``)
            instead of answering.
    """

    heard: str = ""
    reply: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    go_away: float | None = None
    go_away_first: bool = False
    drop_after: int | None = None
    hold_after: int | None = None
    error: dict[str, Any] | None = None


class Connection:
    def __init__(self, server: LiveServer, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.server, self.ws, self.request = server, ws, request
        self.index = len(server.connections)
        self.setup: dict[str, Any] = {}
        self.history: list[tuple[str, str]] = []
        self.open_calls: dict[str, str] = {}
        self.response: asyncio.Task[None] | None = None
        self.speaking = False
        self.silence_ms = 0
        self.audio_ms = 0
        self.resumed_from: str | None = None
        self.closer: asyncio.TimerHandle | None = None

    async def emit(self, message: dict[str, Any]) -> None:
        self.server.sent.append((self.index, message))
        text = json.dumps(message)
        await (self.ws.send_str(text) if self.server.text_frames else self.ws.send_bytes(text.encode()))

    async def refuse(self, code: int, reason: str, *, problem: bool = True) -> None:
        if problem:
            self.server.problems.append(f"connection {self.index}: {reason}")
        await self.ws.close(code=code, message=reason[:120].encode())

    @property
    def manual(self) -> bool:
        return bool(self.setup.get("realtimeInputConfig", {}).get("automaticActivityDetection", {}).get("disabled"))

    async def run(self) -> None:
        first = await self.receive()
        if first is None:
            return
        kind, problem = message_kind(first)
        if kind != "setup":
            await self.refuse(1007, problem or "the first message must be setup")
            return
        if self.server.refuse_setup is not None:
            await self.refuse(*self.server.refuse_setup, problem=False)
            return
        if refused := check_setup(first["setup"], self.server.models):
            await self.refuse(*refused, problem=refused[0] == 1007)
            return
        self.setup = first["setup"]
        handle = self.setup.get("sessionResumption", {}).get("handle")
        if handle is not None:
            if handle not in self.server.handles:
                await self.refuse(1007, "Invalid session resumption handle.", problem=False)
                return
            self.history, self.resumed_from = list(self.server.handles[handle]), handle
        for reply in self.server.setup_replies:
            await (self.ws.send_bytes(reply) if isinstance(reply, bytes) else self.emit(reply))
        await self.offer_handle()
        while (message := await self.receive()) is not None:
            kind, problem = message_kind(message)
            if kind == "setup":
                problem = "setup must be sent once, as the first message"
            if problem or kind is None:
                await self.refuse(1007, problem or "bad message")
                return
            if problem := await getattr(self, f"on_{kind}")(message[kind]):
                await self.refuse(1007, problem)
                return

    async def receive(self) -> dict[str, Any] | None:
        message = await self.ws.receive()
        if message.type == WSMsgType.TEXT:
            parsed = json.loads(message.data)
            self.server.received.append((self.index, parsed))
            return parsed  # type: ignore[no-any-return]
        if message.type == WSMsgType.BINARY:
            await self.refuse(1007, "client messages are JSON text frames")
        return None

    async def offer_handle(self) -> None:
        if "sessionResumption" not in self.setup:
            return
        if self.open_calls:
            await self.emit({"sessionResumptionUpdate": {"resumable": False}})
            return
        handle = self.server.new_id("handle")
        self.server.handles[handle] = list(self.history)
        await self.emit({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})

    # -- client messages -------------------------------------------------------------
    async def on_realtimeInput(self, value: Any) -> str | None:
        pcm, problem = check_realtime_input(value, manual=self.manual)
        if problem:
            return problem
        if "audio" in value:
            self.server.mime_types.add(value["audio"]["mimeType"])
        if "activityStart" in value:
            await self.interrupt()
        elif "activityEnd" in value:
            await self.user_turn_ended()
        elif pcm is not None:
            ms = len(pcm) // 32
            self.audio_ms += ms
            if not self.manual:
                await self.detect(int(np.abs(np.frombuffer(pcm, "<i2").astype(np.int32)).max()) > 500, ms)
        return None

    async def detect(self, loud: bool, ms: int) -> None:
        if loud and not self.speaking:
            self.speaking, self.silence_ms = True, 0
            if self.server.voice_activity:
                await self.emit(
                    {
                        "voiceActivity": {
                            "voiceActivityType": "ACTIVITY_START",
                            "audioOffset": f"{self.audio_ms / 1000:g}s",
                        }
                    }
                )
            interrupts = self.setup.get("realtimeInputConfig", {}).get("activityHandling") != "NO_INTERRUPTION"
            if interrupts:
                await self.interrupt()
        elif self.speaking:
            self.silence_ms = 0 if loud else self.silence_ms + ms
            wanted = (
                self.setup.get("realtimeInputConfig", {})
                .get("automaticActivityDetection", {})
                .get("silenceDurationMs", 300)
            )
            if self.silence_ms >= wanted:
                self.speaking = False
                if self.server.voice_activity:
                    await self.emit(
                        {
                            "voiceActivity": {
                                "voiceActivityType": "ACTIVITY_END",
                                "audioOffset": f"{self.audio_ms / 1000:g}s",
                            }
                        }
                    )
                await self.user_turn_ended()

    async def user_turn_ended(self) -> None:
        turn = self.server.turns[0] if self.server.turns else LiveTurn()
        if turn.heard and "inputAudioTranscription" in self.setup:
            for word in turn.heard.split(" "):
                await self.emit({"serverContent": {"inputTranscription": {"text": " " + word}}})
        self.history.append(("user", turn.heard or "(audio)"))
        await self.start()

    async def on_clientContent(self, value: Any) -> str | None:
        if problem := check_client_content(value):
            return problem
        await self.interrupt()  # a client message interrupts the generation
        for turn in value.get("turns", []):
            self.history += [(turn["role"], p.get("text", "")) for p in turn["parts"]]
        if value.get("turnComplete"):
            await self.start()
        return None

    async def on_toolResponse(self, value: Any) -> str | None:
        if problem := check_tool_response(value, self.open_calls):
            return problem
        for response in value["functionResponses"]:
            del self.open_calls[response["id"]]
            self.history.append(("tool", json.dumps(response["response"])))
        if not self.open_calls:
            await self.start()
        return None

    # -- answers --------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.server.turns:
            self.server.problems.append(f"connection {self.index}: an answer was asked for but the script is empty")
        turn = self.server.turns.pop(0) if self.server.turns else LiveTurn()
        self.response = asyncio.get_running_loop().create_task(self.respond(turn))

    async def interrupt(self) -> None:
        task, self.response = self.response, None
        if task is None or task.done():
            return
        task.cancel()
        await asyncio.wait([task])
        self.server.interruptions += 1
        await self.emit({"serverContent": {"interrupted": True}})
        await self.emit({"serverContent": {"turnComplete": True}})

    async def respond(self, turn: LiveTurn) -> None:
        if self.server.first_audio_delay:
            await asyncio.sleep(self.server.first_audio_delay)
        if turn.go_away is not None and turn.go_away_first:
            await self.go_away(turn.go_away)
        if turn.error is not None:
            await self.emit({"error": turn.error})
            return
        if turn.tool_calls:
            calls = [{"id": self.server.new_id("fc"), "name": name, "args": args} for name, args in turn.tool_calls]
            self.open_calls.update({call["id"]: call["name"] for call in calls})
            await self.emit({"toolCall": {"functionCalls": calls}})
            await self.offer_handle()
            if self.server.complete_after_tool_call:
                await self.emit({"serverContent": {"turnComplete": True}})
            return
        audio = tone(len(turn.reply) * self.server.seconds_per_char, OUT_RATE, frequency=330.0).data
        step = OUT_RATE * 2 * self.server.chunk_ms // 1000
        chunks = [audio[i : i + step] for i in range(0, len(audio), step)]
        words = turn.reply.split(" ") if turn.reply else []
        started = asyncio.get_running_loop().time()
        for index, chunk in enumerate(chunks):
            if index == turn.hold_after:
                await asyncio.Event().wait()  # until interrupted
            if index == turn.drop_after:
                assert self.request.transport is not None
                self.request.transport.abort()
                return
            blob = {"mimeType": f"audio/pcm;rate={OUT_RATE}", "data": base64.b64encode(chunk).decode()}
            await self.emit({"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}})
            said = [w for i, w in enumerate(words) if i * len(chunks) // len(words) == index]
            if said and "outputAudioTranscription" in self.setup:
                await self.emit({"serverContent": {"outputTranscription": {"text": " ".join(said) + " "}}})
            if self.server.pace:
                await asyncio.sleep(self.server.chunk_ms / 1000 * self.server.pace)
        self.history.append(("model", turn.reply))
        await self.emit({"serverContent": {"generationComplete": True}})
        if self.server.realtime_playback:
            played = asyncio.get_running_loop().time() - started
            await asyncio.sleep(max(0.0, len(audio) / 2 / OUT_RATE - played))
        self.response = None
        usage = {"promptTokenCount": 10, "responseTokenCount": len(chunks), "totalTokenCount": 10 + len(chunks)}
        await self.emit({"serverContent": {"turnComplete": True}, "usageMetadata": usage})
        await self.offer_handle()
        if turn.go_away is not None and not turn.go_away_first:
            await self.go_away(turn.go_away)

    async def go_away(self, seconds: float) -> None:
        await self.emit({"goAway": {"timeLeft": f"{seconds:g}s"}})
        loop = asyncio.get_running_loop()
        self.closer = loop.call_later(seconds, lambda: loop.create_task(self.expire()))

    async def expire(self) -> None:
        self.server.expired += 1
        await self.ws.close(code=1011, message=b"Deadline expired before operation could complete.")
