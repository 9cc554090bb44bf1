"""Deliberately broken providers, for tests/core/test_conformance_negative.py.

Each one breaks one rule of the conformance suites and is otherwise honest,
so the suite must fail exactly the check of that rule. They build on the
test kit's fakes; nothing here belongs in ``vocalis.testing``.

Work that a broken provider leaves running (threads, tasks) is bounded: it
ends on its own within a few seconds, or at once when :data:`STOP` is set
(the negative tests set it after each run).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from vocalis.audio import AudioFrame
from vocalis.chat import ChatContext, FunctionCall, FunctionCallOutput
from vocalis.providers.base import ProviderError
from vocalis.providers.llm import LLM, ChatChunk, ToolSpec, Usage
from vocalis.providers.streams import ProviderStream
from vocalis.providers.stt import SpeechEvent, SpeechEventType
from vocalis.providers.vad import VAD, VADEvent, VADEventType, VADStream
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis.testing import FakeEOU, FakeSTT, FakeTTS, is_speech, tone
from vocalis.testing.conformance import frames_of
from vocalis.text import speakable

STOP = threading.Event()
"""Set to end every thread a broken provider left running."""


def speech_frames() -> list[AudioFrame]:
    """What the fakes hear as speech (a tone), heard as "Turn on the lights."."""
    return frames_of(tone(1.0).to_numpy(), 16_000)


SPEECH_TEXT = "Turn on the lights."


# -- settings and secrets ------------------------------------------------------
class UnprefixedEOU(FakeEOU):
    """Its settings read MY_EOU_* instead of VOCALIS_EOU_UNPREFIXED_*."""

    name: ClassVar[str] = "unprefixed"

    class Settings(ProviderSettings):
        model_config = SettingsConfigDict(env_prefix="MY_EOU_", extra="ignore")


class PlainKeyEOU(FakeEOU):
    """Keeps its API key in a plain ``str`` setting: repr and logs show it."""

    name: ClassVar[str] = "plainkey"

    class Settings(ProviderSettings):
        model_config = provider_settings_config("eou", "plainkey")
        api_key: str = ""


class LeakyReprEOU(FakeEOU):
    """Types its key SecretStr, then prints the secret in its repr."""

    name: ClassVar[str] = "leakyrepr"

    class Settings(ProviderSettings):
        model_config = provider_settings_config("eou", "leakyrepr")
        api_key: SecretStr | None = None

    def __repr__(self) -> str:
        key = self.settings.api_key  # type: ignore[attr-defined]
        return f"<LeakyReprEOU key={key.get_secret_value() if key else None}>"


class OutOfRangeEOU(FakeEOU):
    """Returns a "probability" of 1.5."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(1.5, **kwargs)


# -- STT -------------------------------------------------------------------------
class RefusesOtherRatesSTT(FakeSTT):
    """Refuses any audio not at 16 kHz, without declaring that it does."""

    streaming: ClassVar[bool] = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(["turn on the lights"] * 20, final_delay=0.01, streaming=False, **kwargs)

    async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        for frame in frames:
            if frame.sample_rate != 16_000:
                raise self.error(f"audio at {frame.sample_rate} Hz is not supported; send 16 kHz")
        return await super().recognize(frames, language=language)


class DeclaredRatesSTT(RefusesOtherRatesSTT):
    """The same refusal, declared: allowed."""

    accepted_sample_rates: ClassVar[tuple[int, ...]] = (16_000,)


class HalfWrongSTT(FakeSTT):
    """Hears half the words wrong: "turn of the light" (WER 0.5)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(["turn of the light"] * 20, final_delay=0.2, **kwargs)


class SharedBufferSTT(FakeSTT):
    """Keeps the audio being recognised on the instance: concurrent calls mix."""

    streaming: ClassVar[bool] = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(["turn on the lights"] * 20, final_delay=0.2, streaming=False, **kwargs)
        self._frames: Sequence[AudioFrame] = ()

    async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        self._frames = frames
        await asyncio.sleep(self.final_delay)
        if not any(is_speech(frame) for frame in self._frames):
            return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, "", language=language)
        return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, self.next_transcript(), language=language)


class KeepsEmittingSTT(FakeSTT):
    """Streaming; closing its stream leaves the pending final to be sent anyway."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(["turn on the lights"] * 20, final_delay=0.6, **kwargs)

    def stream(self, *, language: str | None = None) -> Any:
        stream = super().stream(language=language)

        async def aclose() -> None:  # forgets to cancel stream._pending
            await ProviderStream.aclose(stream)

        stream.aclose = aclose  # type: ignore[method-assign]
        return stream


class BackgroundDecodeSTT(FakeSTT):
    """Non-streaming; decodes on a thread that a cancellation does not stop."""

    streaming: ClassVar[bool] = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(["turn on the lights"] * 20, streaming=False, **kwargs)

    async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        heard = any(is_speech(frame) for frame in frames)

        def decode() -> None:
            # 0.3 s of "decoding" per 100 ms of audio, in small steps that never look
            # at whether anybody still wants the result.
            for _ in range(len(frames)):
                if STOP.wait(0.015):
                    return
            with contextlib.suppress(RuntimeError):  # the loop may be gone by now
                loop.call_soon_threadsafe(lambda: done.done() or done.set_result(heard))

        threading.Thread(target=decode, daemon=True, name="broken-stt-decode").start()
        text = self.next_transcript() if await done else ""
        return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, text, language=language)


# -- VAD -------------------------------------------------------------------------
class LingeringVAD(VAD):
    """Scores audio on a worker task that closing the stream does not stop."""

    name: ClassVar[str] = "lingering"

    class Settings(ProviderSettings):
        model_config = provider_settings_config("vad", "lingering")

    def stream(self) -> VADStream:
        return _LingeringVADStream(self.label)


class _LingeringVADStream(VADStream):
    def __init__(self, label: str) -> None:
        super().__init__(label)
        self._backlog: list[AudioFrame] = []
        self._worker: asyncio.Task[None] | None = None
        self._speaking = False
        self._quiet = 0.0
        self._time = 0.0

    def push_frame(self, frame: AudioFrame) -> None:
        # Splits big pushes into 20 ms pieces, scored one per loop turn.
        self._backlog.extend(frames_of(frame.to_numpy(), frame.sample_rate))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _work(self) -> None:
        while self._backlog:
            await asyncio.sleep(0.002)
            frame = self._backlog.pop(0)
            self._time += frame.duration
            loud = is_speech(frame)
            if loud and not self._speaking:
                self._speaking, self._quiet = True, 0.0
                self.send(VADEvent(VADEventType.START_OF_SPEECH, self._time, 1.0))
            elif self._speaking and not loud:
                self._quiet += frame.duration
                if self._quiet >= 0.3:
                    self._speaking = False
                    self.send(VADEvent(VADEventType.END_OF_SPEECH, self._time, 0.0))
        if self.input_ended:
            self._finish()

    def end_input(self) -> None:
        self._input_ended = True
        if self._worker is None or self._worker.done():
            self._finish()

    # aclose() is the base class's: it does not know about self._worker.


# -- TTS -------------------------------------------------------------------------
class RunawayTTS(FakeTTS):
    """Synthesises on a thread that goes on after its reader stopped."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(seconds_per_char=0.02, **kwargs)

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        if not speakable(text):
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[AudioFrame | None] = asyncio.Queue()
        count = max(1, round(len(text) * self.seconds_per_char / self.frame_seconds))

        def put(item: AudioFrame | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone; synthesise on regardless
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            for _ in range(count):
                if STOP.wait(0.03):  # 30 ms per 20 ms frame, whether wanted or not
                    return
                put(self._frame)
            put(None)

        threading.Thread(target=work, daemon=True, name="broken-tts").start()
        while (frame := await queue.get()) is not None:
            yield frame


# -- LLM -------------------------------------------------------------------------
def _seen(chat_ctx: ChatContext) -> str:
    """What an echoing model takes from the conversation: every message and tool turn."""
    parts = []
    for item in chat_ctx.items:
        if isinstance(item, FunctionCall):
            parts.append(f"I called {item.name} with {item.arguments}.")
        elif isinstance(item, FunctionCallOutput):
            parts.append(f"It said: {item.output}")
        elif item.role.value == "user":
            parts.append(f"You asked: {item.content}")
    return " ".join(parts)


class EchoLLM(LLM):
    """An honest stand-in for a model that reads its context: it answers by
    repeating what it was told (messages and tool turns), a word every 20 ms.

    ``requests`` holds each request as sent to "the model" (OpenAI JSON).
    """

    name: ClassVar[str] = "echo"
    word_seconds: ClassVar[float] = 0.02

    class Settings(ProviderSettings):
        model_config = provider_settings_config("llm", "echo")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requests: list[str] = []

    def prepare(self, chat_ctx: ChatContext) -> ChatContext:
        """The conversation as this provider sends it (subclasses break it)."""
        return chat_ctx

    def sent(self) -> str:
        return self.requests[-1]

    async def chat(
        self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = (), tool_choice: str | None = None
    ) -> AsyncIterator[ChatChunk]:
        if not chat_ctx.items:
            raise ProviderError("empty conversation", provider=self.label, recoverable=False)
        request = self.prepare(chat_ctx)
        self.requests.append(json.dumps(request.to_openai()))
        words = _seen(request).split()
        for index, word in enumerate(words):
            await asyncio.sleep(self.word_seconds)
            yield ChatChunk(text=word if index == 0 else " " + word)
        yield ChatChunk(usage=Usage(len(request), len(words)))


class DropsToolHistoryLLM(EchoLLM):
    """Leaves function calls and their results out of the request."""

    def prepare(self, chat_ctx: ChatContext) -> ChatContext:
        return chat_ctx.copy(exclude_function_calls=True)


class DropsToolCallLLM(EchoLLM):
    """Sends a tool's result as a user message but leaves out the call that asked for it."""

    def prepare(self, chat_ctx: ChatContext) -> ChatContext:
        kept = ChatContext()
        for item in chat_ctx.items:
            if isinstance(item, FunctionCallOutput):
                kept.add_message("user", f"Tool result: {item.output}")
            elif not isinstance(item, FunctionCall):
                kept.append(item)
        return kept


class KeepsGeneratingLLM(EchoLLM):
    """Generates on a thread that closing or cancelling the reply does not stop."""

    async def chat(
        self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = (), tool_choice: str | None = None
    ) -> AsyncIterator[ChatChunk]:
        self.requests.append(json.dumps(chat_ctx.to_openai()))
        words = _seen(chat_ctx).split()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def put(item: str | None) -> None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def generate() -> None:
            # Each word costs 100 ms, and then it "thinks" on for a second.
            for word in words + ["…"] * 10:
                if STOP.wait(0.1):
                    return
                put(word)
            put(None)

        threading.Thread(target=generate, daemon=True, name="broken-llm").start()
        first = True
        while (word := await queue.get()) is not None:
            if word != "…":
                yield ChatChunk(text=word if first else " " + word)
                first = False
        yield ChatChunk(usage=Usage(len(chat_ctx), len(words)))


class SwallowsCancelLLM(EchoLLM):
    """Catches the cancellation of its reader and streams on regardless."""

    async def chat(
        self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = (), tool_choice: str | None = None
    ) -> AsyncIterator[ChatChunk]:
        self.requests.append(json.dumps(chat_ctx.to_openai()))
        words = _seen(chat_ctx).split()
        for index, word in enumerate(words):
            try:
                await asyncio.sleep(self.word_seconds)
            except asyncio.CancelledError:
                pass  # "finish the sentence first"
            yield ChatChunk(text=word if index == 0 else " " + word)
        yield ChatChunk(usage=Usage(len(chat_ctx), len(words)))
