"""Fault-injecting wrappers for every provider kind.

Wrap a provider (usually a fake) to see what your agent does when it fails::

    llm = FaultyLLM(FakeLLM(["Hello there."]), Fault.HANG, after_chunks=1)
    pipeline = CascadingPipeline(stt=FakeSTT(["hi"]), llm=llm, tts=FakeTTS(), vad=FakeVAD())

A wrapper passes everything through to the provider it wraps, except that
its first ``times`` requests (LLM replies, syntheses, recognitions, streams,
predictions, tool calls, realtime responses, agent utterances) fail with
the :class:`Fault`. It keeps the wrapped provider's label, so errors name
it as if the provider itself had failed. Under
:func:`vocalis.testing.run_virtual` a hang or a slow provider costs no wall
time: the session's timeouts fire on the virtual clock.

Faults are raw exceptions (``ConnectionResetError``...), as a buggy plugin
would raise, not :class:`~vocalis.ProviderError`: the session must label
them itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from vocalis.audio import AudioFrame
from vocalis.chat import ChatContext
from vocalis.providers.eou import EOU
from vocalis.providers.llm import LLM, ChatChunk, ToolSpec
from vocalis.providers.realtime import RealtimeEventType, RealtimeModel, RealtimeSession
from vocalis.providers.stt import STT, SpeechEvent, STTStream
from vocalis.providers.tools import Tool, ToolSource
from vocalis.providers.transport import AudioSink, Transport
from vocalis.providers.tts import TTS, TTSStream
from vocalis.providers.vad import VAD, VADStream
from vocalis.testing._injection import (
    ARGS_DOC,
    DEFAULT,
    Fault,
    Faulty,
    FaultySTTStream,
    FaultyTTSStream,
    FaultyVADStream,
    Injector,
    setup,
)


class FaultyLLM(Faulty, LLM):
    __doc__ = "An LLM whose replies (``chat`` calls) fail; garbage is a ``str`` chunk." + ARGS_DOC

    def __init__(
        self,
        inner: LLM,
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
        self.garbage = "garbage" if garbage is DEFAULT else garbage

    async def chat(
        self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = (), tool_choice: str | None = None
    ) -> AsyncIterator[ChatChunk]:
        chunks = self.inner.chat(chat_ctx, tools=tools, tool_choice=tool_choice)
        if self.injector.arm():
            chunks = self.injector.wrap(chunks, self.garbage)
        async with contextlib.aclosing(chunks) as items:
            async for chunk in items:
                yield chunk


class FaultyTTS(Faulty, TTS):
    __doc__ = (
        "A TTS whose syntheses fail (each ``synthesize`` call, or each native stream); "
        "garbage is ``bytes`` instead of a frame." + ARGS_DOC
    )

    def __init__(
        self,
        inner: TTS,
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
        self.channels = inner.channels  # type: ignore[misc]
        self.garbage = b"\x00\x00" * 160 if garbage is DEFAULT else garbage

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        frames = self.inner.synthesize(text)
        if self.injector.arm():
            frames = self.injector.wrap(frames, self.garbage)
        async with contextlib.aclosing(frames) as items:
            async for frame in items:
                yield frame

    def stream(self) -> TTSStream:
        if type(self.inner).stream is TTS.stream:
            return super().stream()  # sentence by sentence through synthesize()
        armed = self.injector if self.injector.arm() else None
        return FaultyTTSStream(self.label, self.inner.stream(), armed, self.garbage)


class FaultySTT(Faulty, STT):
    __doc__ = (
        "An STT whose streams (streaming) or final recognitions (``recognize``) fail; interim "
        "recognitions pass. Garbage is a ``str`` instead of a SpeechEvent." + ARGS_DOC
    )

    def __init__(
        self,
        inner: STT,
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
        self.streaming = inner.streaming  # type: ignore[misc]
        self.garbage = "garbage" if garbage is DEFAULT else garbage

    async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        if not self.injector.arm():
            return await self.inner.recognize(frames, language=language)  # type: ignore[no-any-return]
        action = await self.injector.request()
        result = await self.inner.recognize(frames, language=language)
        if action == "after":
            raise self.injector.lost()
        return self.garbage if action == "garbage" else result  # type: ignore[return-value]  # garbage on purpose

    async def recognize_interim(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        return await self.inner.recognize_interim(frames, language=language)  # type: ignore[no-any-return]

    def stream(self, *, language: str | None = None) -> STTStream:
        armed = self.injector if self.injector.arm() else None
        return FaultySTTStream(self.label, self.inner.stream(language=language), armed, self.garbage)


class FaultyVAD(Faulty, VAD):
    __doc__ = "A VAD whose streams fail; garbage is a ``str`` instead of a VADEvent." + ARGS_DOC

    def __init__(
        self,
        inner: VAD,
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
        self.garbage = "speech" if garbage is DEFAULT else garbage

    def stream(self) -> VADStream:
        armed = self.injector if self.injector.arm() else None
        return FaultyVADStream(self.label, self.inner.stream(), armed, self.garbage)


class FaultyEOU(Faulty, EOU):
    __doc__ = 'A turn detector whose predictions fail; garbage is the ``str`` ``"likely"``.' + ARGS_DOC

    def __init__(
        self,
        inner: EOU,
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
        self.uses_audio = inner.uses_audio  # type: ignore[misc]
        self.sample_rate = inner.sample_rate  # type: ignore[misc]
        self.garbage = "likely" if garbage is DEFAULT else garbage

    async def predict(self, chat_ctx: ChatContext, *, audio: AudioFrame | None = None) -> float:
        if not self.injector.arm():
            return await self.inner.predict(chat_ctx, audio=audio)  # type: ignore[no-any-return]
        action = await self.injector.request()
        result = await self.inner.predict(chat_ctx, audio=audio)
        if action == "after":
            raise self.injector.lost()
        return self.garbage if action == "garbage" else result  # type: ignore[return-value]  # garbage on purpose


class _FaultyTool:
    """A tool of :class:`FaultyToolSource` whose calls pass through the injector."""

    def __init__(self, tool: Tool, injector: Injector) -> None:
        self._tool = tool
        self._injector = injector
        self.name = tool.name
        self.description = tool.description
        self.parameters = tool.parameters

    async def invoke(self, arguments: Any, *, context: Any = None) -> Any:
        if not self._injector.arm():
            return await self._tool.invoke(arguments, context=context)
        action = await self._injector.request()
        result = await self._tool.invoke(arguments, context=context)
        if action == "after":
            raise self._injector.lost()
        return result


class FaultyToolSource(Faulty, ToolSource):
    __doc__ = (
        "A tool source whose tool calls fail. A tool call returns anything (the session "
        "hands the model its text), so GARBAGE is in the listing instead: ``list_tools`` "
        "adds ``garbage`` (default: the number 42) to the tools." + ARGS_DOC
    )

    def __init__(
        self,
        inner: ToolSource,
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
        self.garbage = 42 if garbage is DEFAULT else garbage

    async def start(self) -> None:
        await self.inner.start()

    async def list_tools(self) -> list[Tool]:
        tools: list[Any] = [_FaultyTool(tool, self.injector) for tool in await self.inner.list_tools()]
        if self.injector.fault is Fault.GARBAGE and self.injector.arm():
            tools.append(self.garbage)
        return tools


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


__all__ = [
    "Fault",
    "FaultyEOU",
    "FaultyLLM",
    "FaultyRealtimeModel",
    "FaultySTT",
    "FaultyTTS",
    "FaultyToolSource",
    "FaultyTransport",
    "FaultyVAD",
]
