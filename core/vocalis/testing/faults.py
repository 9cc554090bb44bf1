"""Fault-injecting wrappers for every provider kind.

Wrap a provider (usually a fake) to see what your agent does when it fails::

    llm = FaultyLLM(FakeLLM(["Hello there."]), Fault.HANG, after_chunks=1)
    pipeline = CascadingPipeline(stt=FakeSTT(["hi"]), llm=llm, tts=FakeTTS(), vad=FakeVAD())

A wrapper passes everything through to the provider it wraps, except that
its first ``times`` requests (LLM replies, syntheses, recognitions, streams,
predictions, tool calls; realtime responses and agent utterances in
:mod:`vocalis.testing.faults_duplex`) fail with
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
from collections.abc import AsyncIterator, Sequence
from typing import Any

from vocalis.audio import AudioFrame
from vocalis.chat import ChatContext
from vocalis.providers.eou import EOU
from vocalis.providers.llm import LLM, ChatChunk, ToolSpec
from vocalis.providers.stt import STT, SpeechEvent, STTStream
from vocalis.providers.tools import Tool, ToolSource
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


__all__ = [
    "Fault",
    "FaultyEOU",
    "FaultyLLM",
    "FaultySTT",
    "FaultyTTS",
    "FaultyToolSource",
    "FaultyVAD",
]
