"""Fallback providers: the next provider takes over when one fails.

``FallbackLLM([primary, secondary])`` is itself an LLM, so a pipeline uses it
like any other. A provider that raises, times out, returns garbage or
ends its stream *before its first output* is skipped (with retries per
:class:`ConnectOptions`) and marked unavailable; a background probe brings
it back. So is one whose ``prewarm`` fails, or does not finish in time
while another is ready. Once output has started, a
failure is raised instead of retried: the user may already have heard part
of the reply, and saying it twice is worse than stopping. A fallback owns
its providers: closing it closes them.

The TTS and STT fallbacks stream through their providers' own streams, so a
hosted streaming provider keeps streaming when wrapped:

- :class:`FallbackTTS` replays the text the failed provider had not spoken
  into the next one; besides before the first audio, it switches only
  between two segments whose text is known, never mid-sentence
  (:mod:`vocalis.providers.fallback_tts`);
- :class:`FallbackSTT` replays the audio that no final transcript covered
  yet into the next one, so the user's words are not lost
  (:mod:`vocalis.providers.fallback_stt`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from vocalis.audio import AudioFrame
from vocalis.chat import ChatContext
from vocalis.events import EventEmitter
from vocalis.providers.base import Provider
from vocalis.providers.fallback_core import ConnectOptions, FallbackChain, describe, every_failed
from vocalis.providers.fallback_stt import FallbackSTTStream
from vocalis.providers.fallback_tts import FallbackTTSStream
from vocalis.providers.guards import check_chunk, check_speech_event, garbage
from vocalis.providers.llm import LLM, ChatChunk, ToolSpec
from vocalis.providers.stt import STT, SpeechEvent, STTStream
from vocalis.providers.tts import TTS, TTSStream
from vocalis.settings import ProviderSettings
from vocalis.text import speakable

__all__ = ["ConnectOptions", "FallbackChain", "FallbackLLM", "FallbackProvider", "FallbackSTT", "FallbackTTS"]

P = TypeVar("P", bound=Provider)


class _NoSettings(ProviderSettings):
    pass


class FallbackProvider(Generic[P]):
    """What the three fallback providers share (their ``fallback`` bookkeeping).

    A fallback owns its providers: :meth:`aclose` stops its background
    probes and closes them (a pipeline closes the fallback when the last
    session running on it ends). It can be used again afterwards.
    """

    fallback: FallbackChain[P]
    _kind: ClassVar[str]

    @property
    def events(self) -> EventEmitter:
        """Emits ``availability_changed`` (``provider``, ``available``, ``error``)."""
        return self.fallback.events

    async def prewarm(self) -> None:
        """Prewarm the providers concurrently, each within ``connect.timeout`` unless none is ready yet.

        A provider that fails or is not ready in time is marked down (its
        probe brings it back); see :meth:`FallbackChain.prewarm`.
        """
        await self.fallback.prewarm(self._kind, self.label)  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        """Stop the probes and close every provider of the chain. Idempotent."""
        await self.fallback.aclose()

    def __repr__(self) -> str:
        labels = ", ".join(p.label for p in self.fallback.providers)
        return f"<{type(self).__name__} [{labels}] {self.fallback.connect}>"


class FallbackLLM(FallbackProvider[LLM], LLM):
    """An LLM that tries ``providers`` in order (see the module docstring).

    Args:
        providers: LLMs in order of preference.
        connect: Timeouts and retries.
    """

    name: ClassVar[str] = "fallback"
    Settings: ClassVar[type[ProviderSettings]] = _NoSettings
    _kind: ClassVar[str] = "LLM"

    def __init__(self, providers: Sequence[LLM], *, connect: ConnectOptions | None = None) -> None:
        super().__init__(settings=_NoSettings())
        self.fallback: FallbackChain[LLM] = FallbackChain(providers, connect or ConnectOptions())

    async def chat(
        self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = (), tool_choice: str | None = None
    ) -> AsyncIterator[ChatChunk]:
        def open_stream(provider: LLM) -> AsyncIterator[ChatChunk]:
            return provider.chat(chat_ctx, tools=tools, tool_choice=tool_choice)

        stream = self.fallback.stream("LLM", self.label, open_stream, check_chunk)
        async with contextlib.aclosing(stream) as chunks:  # type: ignore[type-var]  # an async generator
            async for chunk in chunks:
                yield chunk


class FallbackTTS(FallbackProvider[TTS], TTS):
    """A TTS that tries ``providers`` in order; never switches mid-sentence.

    :meth:`stream` speaks through the first available provider's own stream
    (text is pushed to it as the LLM writes) and moves to the next provider
    when it fails before its first audio, or between two sentences
    (:class:`~vocalis.providers.fallback_tts.FallbackTTSStream`).
    :meth:`synthesize` tries the providers' ``synthesize`` in order.

    Args:
        providers: TTS providers in order of preference (ideally one rate).
        connect: Timeouts and retries.
    """

    name: ClassVar[str] = "fallback"
    Settings: ClassVar[type[ProviderSettings]] = _NoSettings
    _kind: ClassVar[str] = "TTS"

    def __init__(self, providers: Sequence[TTS], *, connect: ConnectOptions | None = None) -> None:
        super().__init__(settings=_NoSettings())
        self.fallback: FallbackChain[TTS] = FallbackChain(providers, connect or ConnectOptions())
        self.sample_rate = providers[0].sample_rate  # type: ignore[misc]

    def stream(self) -> TTSStream:
        """A stream over the providers' own streams, replaced when one fails."""
        return FallbackTTSStream(self.fallback, self.label)

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        if not speakable(text):
            return  # nothing to say: no provider is asked, none can fail

        def open_stream(provider: TTS) -> AsyncIterator[AudioFrame]:
            return provider.synthesize(text)

        stream = self.fallback.stream("TTS", self.label, open_stream, _check_frame)
        async with contextlib.aclosing(stream) as frames:  # type: ignore[type-var]  # an async generator
            async for frame in frames:
                yield frame


class FallbackSTT(FallbackProvider[STT], STT):
    """An STT that tries ``providers`` in order.

    It streams when its first provider does (``streaming`` is decided per
    instance): :meth:`stream` listens through the first available provider's
    own stream (a non-streaming one segmented by the pipeline's VAD) and,
    when it fails, replays the audio no final covered yet into the next
    provider (:class:`~vocalis.providers.fallback_stt.FallbackSTTStream`).
    Otherwise the pipeline segments speech by VAD and :meth:`recognize`
    tries the providers in order.

    Args:
        providers: STT providers in order of preference.
        connect: Timeouts and retries.
        max_replay: Seconds of audio a stream keeps for a replay at most
            (the audio since the last final transcript; older audio is
            dropped first).

    Attributes:
        streaming: Whether the first provider streams.
        sample_rate: The first provider's input rate (the others get their
            own rate in a stream).
    """

    name: ClassVar[str] = "fallback"
    Settings: ClassVar[type[ProviderSettings]] = _NoSettings
    _kind: ClassVar[str] = "STT"

    def __init__(
        self, providers: Sequence[STT], *, connect: ConnectOptions | None = None, max_replay: float = 30.0
    ) -> None:
        super().__init__(settings=_NoSettings())
        self.fallback: FallbackChain[STT] = FallbackChain(providers, connect or ConnectOptions())
        self.streaming = providers[0].streaming  # type: ignore[misc]  # per instance: it depends on the providers
        self.sample_rate = providers[0].sample_rate  # type: ignore[misc]
        self.max_replay = max_replay

    def stream(self, *, language: str | None = None) -> STTStream:
        """A stream over the providers' streams, replaced (with the audio replayed) when one fails."""
        return FallbackSTTStream(self, self.fallback, language=language, max_replay=self.max_replay)

    async def recognize(self, frames: Sequence[AudioFrame], *, language: str | None = None) -> SpeechEvent:
        errors: list[str] = []
        for provider in self.fallback.candidates():

            async def attempt(p: STT = provider) -> SpeechEvent:
                return check_speech_event(p.label, await p.recognize(frames, language=language))

            try:
                return await self.fallback.attempts(provider, attempt)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                errors.append(describe(provider, exc))
                self.fallback.mark_down(provider, exc)
        raise every_failed("STT", self.label, errors)


def _check_frame(label: str, frame: Any) -> AudioFrame:
    if not isinstance(frame, AudioFrame):
        raise garbage(label, frame, "an AudioFrame")
    return frame
