"""CascadingPipeline: VAD → STT → end of turn → LLM (+tools) → TTS."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.audio import AudioFrame, AudioResampler
from vocalis.chat import ChatRole
from vocalis.pipeline.base import Pipeline
from vocalis.pipeline.config import EOUConfig, InterruptConfig, ProviderTimeouts
from vocalis.pipeline.generation import Preemptive, Utterance, llm_text, speak
from vocalis.pipeline.inputs import InputStreams
from vocalis.pipeline.turn_taking import TurnController
from vocalis.pipeline.warmup import prewarm_all
from vocalis.providers.adapters import SegmentedSTTStream
from vocalis.providers.base import Provider, ProviderKind
from vocalis.providers.eou import EOU
from vocalis.providers.llm import LLM
from vocalis.providers.stt import STT, STTStream
from vocalis.providers.tts import TTS
from vocalis.providers.vad import VAD, VADStream
from vocalis.states import AgentState

if TYPE_CHECKING:
    from vocalis.pipeline.ports import SessionPort
    from vocalis.plugin.registry import Registry
    from vocalis.settings import VocalisSettings
    from vocalis.speech import SpeechHandle

_KIND_BASES: dict[ProviderKind, type[Provider]] = {
    ProviderKind.STT: STT,
    ProviderKind.LLM: LLM,
    ProviderKind.TTS: TTS,
    ProviderKind.VAD: VAD,
    ProviderKind.EOU: EOU,
}


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()
"""Marks an optional provider left out: resolve the installed default."""


class CascadingPipeline(InputStreams, Pipeline):
    """Speech in, speech out, through separate STT, LLM and TTS providers.

    Each provider argument is an instance or a registered name (``"whisper"``).
    A missing one is taken from the settings (``VOCALIS_STT`` ...) or, when
    exactly one provider of that kind is installed (or one is marked as the
    default), that one. STT, LLM and TTS are required. VAD and turn detector
    are optional: left out they are resolved the same way if one is
    installed; ``vad=None`` / ``turn_detector=None`` means none.

    Args:
        stt: Speech-to-text provider or name.
        llm: LLM provider or name.
        tts: Text-to-speech provider or name.
        vad: Voice-activity detector or name.
        turn_detector: End-of-utterance model or name.
        eou_config: When a pause ends the user's turn.
        interrupt_config: When user speech interrupts the agent.
        timeouts: How long a turn waits on each provider before it reports
            the provider as failed and goes on.
        registry: Where names are looked up (default: installed plugins).
    """

    def __init__(
        self,
        stt: STT | str | None = None,
        llm: LLM | str | None = None,
        tts: TTS | str | None = None,
        vad: VAD | str | None | _Default = DEFAULT,
        turn_detector: EOU | str | None | _Default = DEFAULT,
        *,
        eou_config: EOUConfig | None = None,
        interrupt_config: InterruptConfig | None = None,
        timeouts: ProviderTimeouts | None = None,
        registry: Registry | None = None,
    ) -> None:
        super().__init__()
        self.eou_config = eou_config or EOUConfig()
        self.interrupt_config = interrupt_config or InterruptConfig()
        self.timeouts = timeouts or ProviderTimeouts()
        self._registry = registry
        self._settings: VocalisSettings | None = None
        self._owned: list[Provider] = []
        self.stt: STT = self._resolve(ProviderKind.STT, stt, required=True)  # type: ignore[assignment]
        self.llm: LLM = self._resolve(ProviderKind.LLM, llm, required=True)  # type: ignore[assignment]
        self.tts: TTS = self._resolve(ProviderKind.TTS, tts, required=True)  # type: ignore[assignment]
        # For the optional kinds an explicit None means "none"; left out, the
        # installed default (if any) is used.
        self.vad: VAD | None = (
            None
            if vad is None
            else self._resolve(  # type: ignore[assignment]
                ProviderKind.VAD, None if isinstance(vad, _Default) else vad, required=False
            )
        )
        self.turn_detector: EOU | None = (
            None
            if turn_detector is None
            else self._resolve(  # type: ignore[assignment]
                ProviderKind.EOU, None if isinstance(turn_detector, _Default) else turn_detector, required=False
            )
        )
        self._vad_stream: VADStream | None = None
        self._stt_stream: STTStream | None = None
        self._vad_resampler: AudioResampler | None = None
        self._stt_resampler = AudioResampler(self.stt.sample_rate)
        self._tasks: list[asyncio.Task[Any]] = []
        self.turns: TurnController | None = None
        self._speculative_stt = self.eou_config.speculative_stt > 0
        self._last_spoken = 0.0
        self._paused_for = 0.0
        self._init_input_streams()

    # -- providers ----------------------------------------------------------
    def _resolve(self, kind: ProviderKind, value: Provider | str | None, *, required: bool) -> Provider | None:
        base = _KIND_BASES[kind]
        if isinstance(value, Provider):
            if not isinstance(value, base):
                raise TypeError(f"{kind.value}= expects a {base.__name__}, got {type(value).__name__}")
            return value
        if value is None:
            value = self._core_settings().provider_for(kind.value) or self._get_registry().default_name(kind)
            if value is None:
                if not required:
                    return None
                available = ", ".join(self._get_registry().names(kind)) or "none installed"
                raise ValueError(
                    f"no {kind.value} provider given and none configured "
                    f"(set VOCALIS_{kind.value.upper()}; installed: {available})"
                )
        provider = self._get_registry().create(kind, value)
        self._owned.append(provider)
        return provider

    def _core_settings(self) -> VocalisSettings:
        # Read once per pipeline: it parses the environment and .env.
        if self._settings is None:
            from vocalis.settings import VocalisSettings

            self._settings = VocalisSettings()
        return self._settings

    def _get_registry(self) -> Registry:
        if self._registry is None:
            self._registry = _default_registry()
        return self._registry

    # -- lifecycle ----------------------------------------------------------
    async def prewarm(self) -> None:
        """Load every provider's model now, concurrently (cached per process).

        No provider is cut short (a local model may load slowly), but one
        still loading after a few seconds is named in a warning.
        """
        await prewarm_all(list(self.providers().values()), self._report_provider)

    def _report_provider(self, provider: Provider, error: BaseException) -> None:
        if self.session is not None:
            self.session.report_error(provider.label, error)
        else:
            logger.error("{} failed: {}", provider.label, error)

    async def attach(self, session: SessionPort) -> None:
        await super().attach(session)
        self.claims.claim(self.providers().values())  # closed by aclose(), unless another session uses them
        await self.prewarm()
        try:
            # The instructions' prompt, evaluated now: the first reply costs what later ones do.
            await self.llm.warm_context(session.agent.chat_context.for_request())
        except Exception as exc:
            session.report_error(self.llm.label, exc)
        loop = asyncio.get_running_loop()
        self.turns = TurnController(
            session,
            self.eou_config,
            self.interrupt_config,
            self.turn_detector,
            self._preempt,
            lambda: self._vad_stream.speech_duration if self._vad_stream is not None else None,
            timeouts=self.timeouts,
            on_stt_stuck=self._on_stt_stuck,
        )
        if self.vad is not None:
            self._vad_resampler = AudioResampler(self.vad.sample_rate)
            self._vad_stream = self.vad.stream()
            self._vad_reader = loop.create_task(self._read_vad(self._vad_stream))
        if not self.stt.streaming and self.vad is None:
            raise ValueError(f"{self.stt.label} does not stream: the pipeline needs a vad= to segment speech")
        self._stt_stream = self._open_stt_stream()
        self._stt_reader = loop.create_task(self._read_stt(self._stt_stream))

    def _open_stt_stream(self) -> STTStream:
        return self.stt.stream() if self.stt.streaming else SegmentedSTTStream(self.stt)

    async def aclose(self) -> None:
        if self.turns is not None:
            await self.turns.aclose()
        for stream in (self._vad_stream, self._stt_stream):
            if stream is not None:
                with contextlib.suppress(Exception):
                    await stream.aclose()
        readers = [t for t in (self._vad_reader, self._stt_reader) if t is not None]
        for task in [*self._tasks, *readers]:
            task.cancel()
        await asyncio.gather(*self._tasks, *readers, return_exceptions=True)
        self._tasks.clear()
        claimed = self.claims.claimed
        await self.claims.release(self._report_provider)
        for provider in self._owned:  # built from names: closed even if never attached
            if any(provider is p for p in claimed):
                continue
            try:
                await provider.aclose()
            except Exception as exc:
                self._report_provider(provider, exc)

    @property
    def turn_pending(self) -> bool:
        return self.turns is not None and self.turns.turn_pending

    # -- audio in -----------------------------------------------------------
    def push_audio(self, frame: AudioFrame) -> None:
        if self._vad_stream is not None and self._vad_resampler is not None:
            vad_frame = self._vad_resampler.push(frame)
            if vad_frame is not None:
                self._vad_stream.push_frame(vad_frame)
                if self._speculative_stt:
                    self._watch_for_pause(vad_frame.duration)
                if self._vad_in_speech:
                    self._watch_vad(vad_frame.duration)
        if self._stt_stream is not None:
            stt_frame = self._stt_resampler.push(frame)
            if stt_frame is not None:
                self._stt_stream.push_frame(stt_frame)
                if self.turns is not None:
                    self.turns.push_audio(stt_frame)

    def _watch_for_pause(self, seconds: float) -> None:
        """Start the STT's final early once the VAD hears no more speech.

        The VAD's speech time stops growing when the user pauses; after
        ``speculative_stt`` seconds of that, the segmented STT recognises
        what it has, so the final is ready (or nearly) when the VAD's
        end-of-speech arrives after its hang-over. More speech drops it.
        """
        stream = self._stt_stream
        spoken = self._vad_stream.speech_duration if self._vad_stream is not None else None
        if spoken is None or not isinstance(stream, SegmentedSTTStream) or self.turns is None:
            return
        if not self.turns.user_speaking:
            self._last_spoken, self._paused_for = 0.0, 0.0
            return
        if spoken > self._last_spoken + 1e-9:
            self._last_spoken, self._paused_for = spoken, 0.0
            if stream.speculating:
                stream.drop_speculation()  # the user went on
            return
        if spoken < self._last_spoken:
            # The VAD reset its count (its end of speech is on the way): not new speech.
            self._last_spoken = spoken
            return
        self._paused_for += seconds
        if self._paused_for + 1e-9 >= self.eou_config.speculative_stt and not stream.speculating:
            stream.speculate()

    def _on_speech_start(self) -> None:
        assert self.turns is not None
        if isinstance(self._stt_stream, SegmentedSTTStream):
            self._stt_stream.start_segment()
        self.turns.speech_started()

    def _on_speech_end(self, silence: float = 0.0) -> None:
        assert self.turns is not None
        if isinstance(self._stt_stream, SegmentedSTTStream):
            self._stt_stream.flush(use_speculation=self._stt_stream.speculating)
        elif self._stt_stream is not None:
            self._stt_stream.flush()
        self._last_spoken, self._paused_for = 0.0, 0.0
        self.turns.speech_ended(silence)

    # -- agent speech ---------------------------------------------------------
    async def speak(self, handle: SpeechHandle, text: str) -> None:
        assert self.session is not None
        utterance = Utterance(self.session.agent.chat_context, handle.id)

        async def one() -> AsyncIterator[str]:
            yield text

        await speak(self.session, handle, self.tts, one(), utterance, timeouts=self.timeouts)

    async def generate_reply(
        self,
        handle: SpeechHandle,
        *,
        instructions: str | None = None,
        user_text: str | None = None,
    ) -> None:
        assert self.session is not None
        session = self.session
        loop = asyncio.get_running_loop()
        chat_ctx = session.agent.chat_context
        flow = session.conversation if user_text is not None else None
        preemptive = None
        if user_text is not None and self.turns is not None:
            preemptive = self.turns.take_preemptive(user_text)
        if user_text is not None:
            chat_ctx.add_message(ChatRole.USER, user_text, created_at=loop.time())
            session.emit("user_turn", {"text": user_text})
            if flow is not None:
                await flow.turn_started(user_text)
        session.set_agent_state(AgentState.THINKING)
        utterance = Utterance(chat_ctx, handle.id)
        llm_source = llm_text(
            session, self.llm, utterance, instructions=instructions, preemptive=preemptive, timeouts=self.timeouts
        )
        text_source = llm_source
        if flow is not None and user_text is not None:
            text_source = flow.text_for(user_text, llm_source)
        try:
            await speak(
                session,
                handle,
                self.tts,
                text_source,
                utterance,
                timeouts=self.timeouts,
                apology=session.error_message,
            )
        finally:
            if flow is not None:
                await flow.turn_ended()

    def _preempt(self, transcript: str) -> Preemptive:
        assert self.session is not None
        return Preemptive(self.session, self.llm, transcript)


def _default_registry() -> Registry:
    from vocalis.plugin.manager import make_plugin_manager

    return make_plugin_manager().registry
