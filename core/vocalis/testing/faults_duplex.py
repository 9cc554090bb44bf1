"""Fault-injecting wrappers for realtime models and transports.

The same wrappers as :mod:`vocalis.testing.faults`, for the two kinds that
stream both ways: a :class:`FaultyRealtimeModel`'s responses and a
:class:`FaultyTransport`'s audio fail with the :class:`Fault`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vocalis.audio import AudioFrame
from vocalis.chat import ChatContext
from vocalis.providers.llm import ToolSpec
from vocalis.providers.realtime import RealtimeEventType, RealtimeModel, RealtimeSession
from vocalis.providers.transport import AudioSink, Transport
from vocalis.testing._injection import ARGS_DOC, DEFAULT, Fault, Faulty, Injector, setup

__all__ = ["FaultyRealtimeModel", "FaultyTransport"]


class _FaultyRealtimeSession(RealtimeSession):
    """A realtime connection whose responses pass through the injector."""

    def __init__(self, label: str, inner: RealtimeSession, injector: Injector, garbage: Any) -> None:
        super().__init__(label)
        self._inner = inner
        self.start_task(self._pump(injector, garbage))

    async def _pump(self, injector: Injector, garbage: Any) -> None:
        armed, index = False, 0
        async for event in self._inner:
            if event.type is RealtimeEventType.RESPONSE_STARTED:
                armed, index = injector.arm(), 0
            if armed:
                action = await injector.step(index)
                if action == "close":
                    return
                if action == "garbage":
                    self.send(garbage)
                index += 1
            if event.type is RealtimeEventType.RESPONSE_DONE:
                armed = False
            self.send(event)

    def push_audio(self, frame: AudioFrame) -> None:
        self._inner.push_audio(frame)

    async def create_response(self, instructions: str | None = None) -> None:
        await self._inner.create_response(instructions)

    async def send_text(self, text: str) -> None:
        await self._inner.send_text(text)

    async def cancel_response(self, *, played_seconds: float | None = None) -> None:
        await self._inner.cancel_response(played_seconds=played_seconds)

    async def send_tool_output(self, call_id: str, output: str, *, is_error: bool = False) -> None:
        await self._inner.send_tool_output(call_id, output, is_error=is_error)

    async def update_instructions(self, instructions: str) -> None:
        await self._inner.update_instructions(instructions)

    async def aclose(self) -> None:
        await super().aclose()
        await self._inner.aclose()


class FaultyRealtimeModel(Faulty, RealtimeModel):
    __doc__ = (
        "A realtime model whose responses fail on the connection: ``after_chunks`` counts "
        "the response's events from its start; CLOSE ends the connection's event stream; "
        "garbage is a ``dict`` instead of an event." + ARGS_DOC
    )

    def __init__(
        self,
        inner: RealtimeModel,
        fault: Fault,
        *,
        after_chunks: int | None = None,
        delay: float = 120.0,
        times: int | None = 1,
        skip: int = 0,
        garbage: Any = DEFAULT,
        error: BaseException | None = None,
        name: str | None = None,
    ) -> None:
        setup(self, inner, name, Injector(fault, after_chunks, delay, times, skip, error))
        self.sample_rate = inner.sample_rate  # type: ignore[misc]
        self.output_sample_rate = inner.output_sample_rate  # type: ignore[misc]
        self.garbage = {"type": "response.created"} if garbage is DEFAULT else garbage
        self.connections: list[_FaultyRealtimeSession] = []

    async def connect(
        self, *, instructions: str, tools: Sequence[ToolSpec] = (), chat_ctx: ChatContext | None = None
    ) -> RealtimeSession:
        inner = await self.inner.connect(instructions=instructions, tools=tools, chat_ctx=chat_ctx)
        session = _FaultyRealtimeSession(self.label, inner, self.injector, self.garbage)
        self.connections.append(session)
        return session


class _FaultySink:
    """Pushes ``garbage`` into the session ahead of a user frame."""

    def __init__(self, sink: AudioSink, transport: FaultyTransport) -> None:
        self._sink = sink
        self._transport = transport
        self._frames = 0

    def push_audio(self, frame: AudioFrame) -> None:
        transport = self._transport
        if self._frames >= transport.injector.after_chunks and transport.injector.arm():
            self._sink.push_audio(transport.garbage)  # type: ignore[arg-type]  # garbage on purpose
        self._frames += 1
        self._sink.push_audio(frame)


class FaultyTransport(Faulty, Transport):
    __doc__ = (
        "A transport whose agent utterances fail to go out (each utterance is a request; "
        "``after_chunks`` counts its frames): raising, slow or hung ``capture_frame``; CLOSE "
        "raises ``BrokenPipeError`` as a dropped socket does. GARBAGE goes the other way: "
        "the transport pushes ``garbage`` (default ``bytes``) into the session as user audio. "
        "Other attributes (``push``, ``events``...) are the wrapped transport's." + ARGS_DOC
    )

    def __init__(
        self,
        inner: Transport,
        fault: Fault,
        *,
        after_chunks: int | None = None,
        delay: float = 120.0,
        times: int | None = 1,
        skip: int = 0,
        garbage: Any = DEFAULT,
        error: BaseException | None = None,
        name: str | None = None,
    ) -> None:
        setup(self, inner, name, Injector(fault, after_chunks, delay, times, skip, error))
        self.garbage = b"\x00\x00" * 320 if garbage is DEFAULT else garbage
        self.audio_output = output = inner.audio_output
        capture = output.capture_frame
        injector, state = self.injector, {"armed": False, "index": 0}

        async def capture_frame(frame: AudioFrame) -> None:
            if not output.speaking:  # a new utterance
                state["armed"] = injector.fault is not Fault.GARBAGE and injector.arm()
                state["index"] = 0
            if state["armed"]:
                if await injector.step(state["index"]) == "close":
                    raise injector.error or BrokenPipeError("injected fault: the connection closed")
                state["index"] += 1
            await capture(frame)

        output.capture_frame = capture_frame  # type: ignore[method-assign]

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    async def start(self, sink: AudioSink) -> None:
        await self.inner.start(_FaultySink(sink, self) if self.injector.fault is Fault.GARBAGE else sink)

    def send_event(self, event: str, payload: Mapping[str, object]) -> None:
        self.inner.send_event(event, payload)
