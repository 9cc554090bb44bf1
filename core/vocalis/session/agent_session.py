"""AgentSession: one conversation between a user and an agent."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.audio import AudioFormatError, AudioFrame
from vocalis.event_types import AgentStateChangedEvent
from vocalis.events import SessionEventEmitter
from vocalis.session.limits import SessionLimits, trim_chat_context
from vocalis.log import session_context
from vocalis.observability.recorder import MetricsRecorder, UserTurnTiming
from vocalis.providers.base import ProviderError
from vocalis.providers.transport import AudioOutput, Transport
from vocalis.speech import SpeechHandle, SpeechSource
from vocalis.states import FORWARDED_EVENTS, SESSION_EVENTS, AgentState, UserState
from vocalis.text import clean_text, has_text
from vocalis.tools.runner import ToolRunner
from vocalis.session.tool_host import SessionToolHost
from vocalis.session.wake_up import WakeUpTimer

if TYPE_CHECKING:
    from vocalis.session.agent import Agent
    from vocalis.session.background import BackgroundAudioConfig, BackgroundMixer
    from vocalis.session.flow import ConversationFlow
    from vocalis.observability.metrics import TurnMetrics
    from vocalis.pipeline.base import Pipeline

_session_ids = itertools.count(1)


def _text_argument(value: object, method: str, name: str) -> str:
    """A str argument, cleaned; anything else is a caller bug worth a clear TypeError."""
    if not isinstance(value, str):
        raise TypeError(f"{method}() expects {name} as a str, not {type(value).__name__}")
    return clean_text(value)


# Seconds close() waits for an interrupted utterance to record what was heard.
_CLOSE_GRACE = 1.0

class AgentSession(SessionEventEmitter):
    """Runs one conversation: an agent on a pipeline, over a transport.

    Events (handlers get one ``dict`` payload): ``user_state_changed`` and
    ``agent_state_changed`` (``{"state", "old_state"}``, only on change),
    ``on_speech_in`` (user transcripts: ``{"text", "is_final", "language"}``),
    ``on_speech_out`` (agent text as it starts playing: ``{"text",
    "speech_id"}``), ``user_turn`` and ``agent_turn`` (committed turns),
    ``function_call`` (``{"call_id", "name", "arguments", "output",
    "is_error"}``), ``agent_handoff``, ``on_wake_up``, ``error`` (``{"source",
    "message", "recoverable"}``) and ``close``.

    Args:
        agent: The agent to run.
        pipeline: A :class:`CascadingPipeline` or :class:`RealTimePipeline`.
        conversation_flow: Hooks into each user turn (cascading only).
        wake_up: Seconds without user speech after which ``on_wake_up`` fires.
        background_audio: Ambient and "thinking" sound
            (:class:`vocalis.session.background.BackgroundAudioConfig`).
        session_id: An id for logs; generated when omitted.
        tool_timeout: Seconds a tool call may take before it fails.
        max_tool_steps: LLM rounds with tool calls per reply.
        max_parallel_tools: Tool calls that may run at once (more wait).
        record_text: Put user and agent text into metrics and traces (off
            by default, for privacy).
        error_message: Spoken when a turn fails before the agent said
            anything (a provider raised, timed out or returned garbage),
            e.g. ``"Sorry, something went wrong on my side."``. None (the
            default) stays silent; the ``error`` event is emitted either way.
        limits: Caps on chat context, tool output, kept metrics and queued
            agent audio (:class:`vocalis.session.limits.SessionLimits`; defaults
            when omitted).
    """

    def __init__(
        self,
        agent: Agent,
        pipeline: Pipeline,
        conversation_flow: ConversationFlow | None = None,
        wake_up: float | None = None,
        background_audio: BackgroundAudioConfig | None = None,
        *,
        session_id: str | None = None,
        tool_timeout: float = 10.0,
        max_tool_steps: int = 5,
        max_parallel_tools: int = 8,
        record_text: bool = False,
        error_message: str | None = None,
        limits: SessionLimits | None = None,
    ) -> None:
        super().__init__()
        if agent.session is not None and not agent.session.closed:
            raise RuntimeError(
                f"agent {agent.name!r} already belongs to a running session; "
                "create one Agent per session (its chat context is per conversation)"
            )
        if wake_up is not None and wake_up <= 0:
            raise ValueError("wake_up must be a positive number of seconds")
        self.id = session_id or f"session_{next(_session_ids)}"
        if error_message is not None and not isinstance(error_message, str):
            raise TypeError(f"error_message expects a str or None, not {type(error_message).__name__}")
        self.error_message = error_message.strip() if error_message and error_message.strip() else None
        self.close_reason = ""
        self.agent = agent
        self.pipeline = pipeline
        self.conversation_flow = conversation_flow
        self.wake_up = wake_up
        if background_audio is not None:
            from vocalis.session.background import BackgroundAudioConfig

            if not isinstance(background_audio, BackgroundAudioConfig):
                raise TypeError("background_audio expects a BackgroundAudioConfig")
        self.background_audio = background_audio
        self._mixer: BackgroundMixer | None = None
        self.on_wake_up: Callable[[], Any] | None = None
        self.transport: Transport | None = None
        if limits is not None and not isinstance(limits, SessionLimits):
            raise TypeError("limits expects a SessionLimits")
        self.limits = limits if limits is not None else SessionLimits()
        self.audio_output: AudioOutput = AudioOutput()
        self.tools = ToolRunner(
            SessionToolHost(self),
            timeout=tool_timeout,
            max_steps=max_tool_steps,
            max_parallel=max_parallel_tools,
            max_output_chars=self.limits.max_tool_output_chars,
        )
        self._user_state = UserState.IDLE
        self._agent_state = AgentState.STARTING
        self._queue: deque[SpeechHandle] = deque()
        self._queue_wake: asyncio.Event | None = None
        self._current: SpeechHandle | None = None
        self._pending_handoff: Agent | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._wake = WakeUpTimer(self)
        self.recorder = MetricsRecorder(self, record_text=record_text, max_turns=self.limits.max_metrics_turns)
        self.tracer: Any = None
        self._started = False
        self._closed = False
        self._close_task: asyncio.Task[None] | None = None
        agent.session = self
        if conversation_flow is not None and conversation_flow.agent is None:
            conversation_flow.agent = agent

    EVENTS = SESSION_EVENTS
    """Events a session emits (plugins and pipelines may add their own)."""

    # -- state ---------------------------------------------------------------
    @property
    def user_state(self) -> UserState:
        """What the user is doing now."""
        return self._user_state

    @property
    def agent_state(self) -> AgentState:
        """What the agent is doing now."""
        return self._agent_state

    @property
    def current_speech(self) -> SpeechHandle | None:
        """The utterance being generated or played, if any."""
        return self._current

    @property
    def busy(self) -> bool:
        """Whether the conversation has work in flight: the user's turn (speech,
        words still being recognised, an end of turn being decided) or agent
        speech running or queued. False once everything said was answered."""
        handles = [self._current, *self._queue]
        return any(h is not None and not h.done() for h in handles) or self.pipeline.turn_pending

    @property
    def metrics(self) -> list[TurnMetrics]:
        """Metrics of the agent turns so far (the newest ``limits.max_metrics_turns``)."""
        return self.recorder.turns

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run (or is running)."""
        return self._closed

    def _set_user_state(self, state: UserState) -> None:
        if state is self._user_state:
            return
        old, self._user_state = self._user_state, state
        self.emit("user_state_changed", {"state": state, "old_state": old})

    def _set_agent_state(self, state: AgentState) -> None:
        if state is self._agent_state or self._agent_state is AgentState.CLOSING:
            return
        old, self._agent_state = self._agent_state, state
        self.emit("agent_state_changed", {"state": state, "old_state": old})

    def _settle_states(self) -> None:
        """After speech ends: listening if the user talks, else idle."""
        if self._user_state is UserState.SPEAKING:
            self._set_agent_state(AgentState.LISTENING)
        else:
            self._set_agent_state(AgentState.IDLE)
            self._set_user_state(UserState.IDLE)

    # -- lifecycle -------------------------------------------------------------
    async def start(self, transport: Transport | None = None) -> None:
        """Start the session: providers, tool sources, transport, ``on_enter``.

        Args:
            transport: Where audio comes from and goes to. Without one the
                session still runs text turns, and agent audio is only timed.
        """
        if self._started:
            raise RuntimeError("session already started")
        self._started = True
        with session_context(self.id):
            self.recorder.start()
            self._queue_wake = asyncio.Event()
            if transport is not None:
                self.transport = transport
                self.audio_output = transport.audio_output
                self.on_any(self._forward_to_transport)
                if self.background_audio is not None:
                    self._start_background(transport.audio_output)
            self.audio_output.max_ahead = self.limits.max_agent_audio_ahead
            await self.tools.start_sources(self.agent)
            await self.pipeline.attach(self)
            self._scheduler = asyncio.get_running_loop().create_task(
                self._run_scheduler(), name=f"{self.id}-speech"
            )
            if self.transport is not None:
                await self.transport.start(self)
            self._set_agent_state(AgentState.IDLE)
            self._arm_wake_up()
            from vocalis.observability.telemetry import tracing_configured

            if self.tracer is None and tracing_configured():
                self.trace()
            logger.info("session started with agent {!r}", self.agent.name)
            await self._guarded(self.agent.on_enter(), "agent.on_enter")

    def trace(self, tracer_provider: Any = None) -> Any:
        """Send this session's spans to OpenTelemetry (once; needs ``vocalis[otel]``).

        Called by :meth:`start` when a global SDK tracer provider is set.
        """
        if self.tracer is None:
            from vocalis.observability.telemetry import attach_tracing

            self.tracer = attach_tracing(self, tracer_provider)
        return self.tracer

    def _start_background(self, output: AudioOutput) -> None:
        from vocalis.session.background import BackgroundMixer

        mixer = BackgroundMixer(output, self.background_audio)
        self._mixer = mixer
        self.audio_output = mixer
        mixer.start()

        def follow_state(event: AgentStateChangedEvent) -> None:
            mixer.thinking = event["state"] is AgentState.THINKING

        self.on("agent_state_changed", follow_state)

    async def leave(self) -> None:
        """Leave the conversation (closes the session)."""
        await self.close()

    async def close(self, *, reason: str = "closed") -> None:
        """Stop everything and release resources. Safe to call many times.

        Runs ``agent.on_exit()``, pipeline and flow cleanup, agent cleanup
        and transport close once each; a failure in one does not skip the
        others.

        Args:
            reason: Why, for the ``close`` event and the transport (e.g.
                ``"idle"``, ``"shutdown"``, ``"hangup"``); the first call's wins.
        """
        if self._close_task is None:
            self.close_reason = reason
            self._close_task = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._close_task)

    async def _close(self) -> None:
        with session_context(self.id):
            self._closed = True
            self._set_agent_state(AgentState.CLOSING)
            self._cancel_wake_up()
            current = self._current
            for handle in [current, *self._queue]:
                if handle is not None:
                    handle.interrupt(force=True)
            self.audio_output.clear_buffer()
            if current is not None and not current.done():
                # Let the interrupted utterance wind down, so its agent_turn
                # (what was heard) and its chat message are recorded; a
                # provider that ignores cancellation gets cut off below.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(current.wait()), _CLOSE_GRACE)
            if self._scheduler is not None:
                self._scheduler.cancel()
                await asyncio.gather(self._scheduler, return_exceptions=True)
            for handle in self._queue:
                handle._discard()
            self._queue.clear()
            await self._guarded(self.tools.aclose(), "tool calls")
            if self._started:
                await self._guarded(self.agent.on_exit(), "agent.on_exit")
            await self._guarded(self.pipeline.aclose(), "pipeline")
            if self.conversation_flow is not None:
                await self._guarded(self.conversation_flow.cleanup(), "conversation_flow.cleanup")
            await self._guarded(self.agent.cleanup(), "agent.cleanup")
            if self._mixer is not None:
                await self._guarded(self._mixer.aclose(), "background audio")
            if self.transport is not None:
                await self._guarded(self.transport.aclose(), self.transport.label)
            summary = self.recorder.close()
            self.emit("close", {"session_id": self.id, "summary": summary, "reason": self.close_reason})
            await self.aclose_handlers()
            logger.info("session closed")

    async def _guarded(self, awaitable: Any, source: str) -> None:
        try:
            await awaitable
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.report_error(source, exc)

    def _forward_to_transport(self, event: str, args: tuple[Any, ...]) -> None:
        """Let the transport show transcripts and states to the remote side."""
        if event in FORWARDED_EVENTS and self.transport is not None and args:
            payload = {k: (v.value if isinstance(v, StrEnum) else v) for k, v in args[0].items()}
            self.transport.send_event(event, payload)

    # -- errors --------------------------------------------------------------------
    def report_error(self, source: str, error: BaseException | str, *, recoverable: bool = True) -> None:
        """Emit an ``error`` event and log it; the session keeps running.

        Args:
            source: What failed: a provider label (``"stt:whisper"``), a tool,
                a hook.
            error: The exception or a message.
            recoverable: Whether the session could continue.
        """
        if isinstance(error, ProviderError) and error.provider:
            source = error.provider
            message = str(error).removeprefix(f"{error.provider}: ")
        elif isinstance(error, BaseException):
            message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        else:
            message = error
        logger.error("{} failed: {}", source, message)
        self.emit("error", {"source": source, "message": message, "recoverable": recoverable})

    def _apologize(self) -> None:
        """A user turn was lost to a provider failure: say ``error_message``, if set."""
        message = self.error_message
        if message is None or self._closed or not self._started:
            return
        handle = SpeechHandle("say")
        self._enqueue(handle, lambda: self.pipeline.speak(handle, message))

    # -- audio in --------------------------------------------------------------------
    def push_audio(self, frame: AudioFrame) -> None:
        """Feed one frame of user audio (called by transports)."""
        if self._closed:
            return
        if not isinstance(frame, AudioFrame):
            self.report_error(
                "audio input",
                f"expected an AudioFrame, got {type(frame).__name__} (use push_pcm for raw PCM bytes)",
            )
            return
        try:
            self.pipeline.push_audio(frame)
        except AudioFormatError as exc:
            self.report_error("audio input", exc)

    def push_pcm(self, data: bytes, sample_rate: int, channels: int = 1) -> None:
        """Feed raw int16 PCM; malformed input is reported, not raised."""
        try:
            frame = AudioFrame(data, sample_rate, channels)
        except AudioFormatError as exc:
            self.report_error("audio input", exc)
            return
        self.push_audio(frame)

    # -- speaking --------------------------------------------------------------------
    async def say(
        self, message: str, *, interruptible: bool = True, wait_for_playback: bool = False
    ) -> SpeechHandle:
        """Speak ``message`` as is (queued after the current utterance).

        Args:
            message: The text to speak (control characters are dropped, see
                :func:`vocalis.text.clean_text`).
            interruptible: Whether user speech may cut it off.
            wait_for_playback: Return only when it has played out (by default
                it returns at once; ``await`` the handle to wait).

        Returns:
            The utterance's handle (discarded, with an ``error`` event, when
            there is nothing to say).

        Raises:
            TypeError: ``message`` is not a str.
        """
        message = _text_argument(message, "say", "message")
        handle = SpeechHandle("say", allow_interruptions=interruptible)
        if not has_text(message):
            self.report_error("say", "empty message: nothing to say")
            handle._discard()
            return handle
        self._enqueue(handle, lambda: self.pipeline.speak(handle, message))
        if wait_for_playback:
            await handle
        return handle

    async def send_text(self, text: str, *, wait_for_playback: bool = True) -> SpeechHandle:
        """Take ``text`` as a complete user turn (typed input, or tests).

        The agent's current utterance is interrupted if it allows it, and the
        agent answers as it would after a spoken turn.

        Control characters are dropped and lone surrogates replaced (see
        :func:`vocalis.text.clean_text`).

        Returns:
            The handle of the agent's reply (discarded, with an ``error``
            event, when the text is empty).

        Raises:
            TypeError: ``text`` is not a str.
        """
        text = _text_argument(text, "send_text", "text")
        if not has_text(text):
            self.report_error("send_text", "empty text: no user turn")
            handle = SpeechHandle("user_turn")
            handle._discard()
            return handle
        self.interrupt()
        self.emit("on_speech_in", {"text": text.strip(), "is_final": True, "language": None})
        handle = self._start_user_turn(text.strip())
        if wait_for_playback:
            await handle
        return handle

    async def reply(
        self, instructions: str, wait_for_playback: bool = True, *, interruptible: bool = True
    ) -> SpeechHandle:
        """Have the LLM answer now, guided by extra ``instructions``.

        A call while another reply is pending or running is discarded, as is
        one with empty instructions.

        Args:
            instructions: Guidance for this reply only (not stored).
            wait_for_playback: Return only when the reply has played out.
            interruptible: Whether user speech may cut the reply off.

        Raises:
            TypeError: ``instructions`` is not a str.
        """
        instructions = _text_argument(instructions, "reply", "instructions")
        handle = SpeechHandle("reply", allow_interruptions=interruptible)
        if not has_text(instructions) or self._reply_pending():
            logger.info(
                "reply() discarded: {}",
                "empty instructions" if not has_text(instructions) else "a reply is already running",
            )
            handle._discard()
            return handle
        self._enqueue(handle, lambda: self.pipeline.generate_reply(handle, instructions=instructions))
        if wait_for_playback:
            await handle
        return handle

    def interrupt(self, *, force: bool = False) -> bool:
        """Stop the agent's current utterance now.

        Args:
            force: Also stop non-interruptible utterances.

        Returns:
            Whether something was interrupted.
        """
        handle = self._current
        return handle.interrupt(force=force) if handle is not None else False

    def _reply_pending(self) -> bool:
        handles = [self._current, *self._queue]
        return any(h is not None and h.source in ("reply", "user_turn") and not h.done() for h in handles)

    def _enqueue(self, handle: SpeechHandle, factory: Callable[[], Any], *, front: bool = False) -> SpeechHandle:
        if self._closed or not self._started:
            if not self._started:
                self.report_error("session", "the session is not started")
            handle._discard()
            return handle
        handle._factory = factory  # type: ignore[attr-defined]
        if front:
            self._queue.appendleft(handle)
        else:
            self._queue.append(handle)
        assert self._queue_wake is not None
        self._queue_wake.set()
        return handle

    def _start_user_turn(
        self, transcript: str, source: SpeechSource = "user_turn", timing: UserTurnTiming | None = None
    ) -> SpeechHandle:
        """Called by the pipeline when the user's turn is committed."""
        self._mark_user_activity()
        # A user turn still waiting for its reply joins this one, words in
        # order: its text reaches the chat context only when its reply runs,
        # so discarding it would lose what the user said. A queued reply()
        # is superseded by the user's turn.
        earlier: list[str] = []
        for queued in list(self._queue):
            if queued.source in ("reply", "user_turn"):
                self._queue.remove(queued)
                queued._discard()
                if queued.source == "user_turn" and queued.user_text:
                    earlier.append(queued.user_text)
                    timing = _merged_timing(queued.user_timing, timing)
        if earlier:
            transcript = " ".join([*earlier, transcript])
        handle = SpeechHandle(source)
        handle.user_text = transcript
        handle.user_timing = timing
        return self._enqueue(
            handle, lambda: self.pipeline.generate_reply(handle, user_text=transcript), front=True
        )

    async def _run_scheduler(self) -> None:
        assert self._queue_wake is not None
        with session_context(self.id):
            while True:
                while not self._queue:
                    self._queue_wake.clear()
                    await self._queue_wake.wait()
                handle = self._queue.popleft()
                if handle.done():
                    continue
                self._current = handle
                self._cancel_wake_up()
                self._trim_context()
                handle.metrics = self.recorder.begin(handle, handle.user_timing, handle.user_text)
                try:
                    await handle._factory()  # type: ignore[attr-defined]
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.report_error("speech", exc)
                finally:
                    self._current = None
                    self.recorder.end(handle, handle.metrics)
                    handle._mark_done()
                    if not self._closed:
                        self._settle_states()
                if self._pending_handoff is not None:
                    await self._do_handoff()
                if not self._queue:
                    self._arm_wake_up()

    def _trim_context(self) -> None:
        """Apply the context limits before a reply (see :class:`SessionLimits`)."""
        limits = self.limits
        dropped = trim_chat_context(
            self.agent.chat_context,
            max_items=limits.max_context_items,
            max_chars=limits.max_context_chars,
            keep=limits.context_keep,
        )
        if dropped:
            logger.debug("chat context over its limits: dropped the {} oldest items", dropped)

    # -- handoff ---------------------------------------------------------------------
    def request_handoff(self, agent: Agent) -> None:
        """Switch to ``agent`` once the current utterance ends."""
        self._pending_handoff = agent

    async def _do_handoff(self) -> None:
        new, self._pending_handoff = self._pending_handoff, None
        if new is None or new is self.agent:
            return
        old = self.agent
        await self._guarded(old.on_exit(), "agent.on_exit")
        if new.inherit_context:
            new.inherit_from(old)
        new.session = self
        self.agent = new
        if self.conversation_flow is not None:
            self.conversation_flow.agent = new
        await self._guarded(self.tools.start_sources(new), "tool sources")
        await self._guarded(self.pipeline.on_agent_changed(), "pipeline")
        logger.info("handoff from {!r} to {!r}", old.name, new.name)
        self.emit("agent_handoff", {"from": old.name, "to": new.name})
        await self._guarded(new.on_enter(), "agent.on_enter")

    # -- wake-up ---------------------------------------------------------------------
    def _mark_user_activity(self) -> None:
        """User speech or transcript: a new idle period begins later."""
        self._wake.user_activity()

    def _arm_wake_up(self) -> None:
        self._wake.arm()

    def _cancel_wake_up(self) -> None:
        self._wake.cancel()

    def emit_task(self, awaitable: Any, source: str) -> None:
        """Run a user callback's coroutine as a tracked task; report failures."""

        async def runner() -> None:
            with session_context(self.id):
                await self._guarded(awaitable, source)

        task = asyncio.ensure_future(runner())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- called by pipelines ----------------------------------------------------------
    def _on_user_speech_started(self) -> None:
        self._mark_user_activity()
        self._set_user_state(UserState.SPEAKING)
        if self._current is None:
            self._set_agent_state(AgentState.LISTENING)

    def _on_user_speech_stopped(self) -> None:
        if self._current is not None and self.audio_output.speaking:
            self._set_user_state(UserState.LISTENING)
        else:
            self._set_user_state(UserState.IDLE)
            if self._current is None:
                self._set_agent_state(AgentState.IDLE)
        self._arm_wake_up()

    def _on_agent_audio_started(self) -> None:
        self._set_agent_state(AgentState.SPEAKING)
        if self._user_state is not UserState.SPEAKING:
            self._set_user_state(UserState.LISTENING)

    def __repr__(self) -> str:
        return f"<AgentSession {self.id} agent={self.agent.name!r} state={self._agent_state.value}>"


def _merged_timing(earlier: UserTurnTiming | None, later: UserTurnTiming | None) -> UserTurnTiming | None:
    """Timing of two user turns answered as one: the later turn's, from the
    earlier turn's start of speech."""
    if later is None or earlier is None or earlier.speech_started_at is None:
        return later or earlier
    return dataclasses.replace(later, speech_started_at=earlier.speech_started_at)
