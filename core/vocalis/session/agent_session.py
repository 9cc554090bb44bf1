"""AgentSession: one conversation between a user and an agent."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from loguru import logger

from vocalis.audio import AudioFormatError, AudioFrame
from vocalis.events import SessionEventEmitter
from vocalis.log import session_context
from vocalis.observability.recorder import MetricsRecorder
from vocalis.observability.telemetry import attach_tracing
from vocalis.providers.redact import provider_secrets, redact
from vocalis.providers.transport import AudioOutput, Transport
from vocalis.session.core import describe_error
from vocalis.session.hosts import SessionToolHost
from vocalis.session.lifecycle import SessionLifecycle
from vocalis.session.limits import SessionLimits
from vocalis.session.session_hooks import (
    check_session_arguments,
    check_start_options,
    register_with_job,
    wire_agent_hooks,
)
from vocalis.session.state_machine import SessionStates
from vocalis.session.wake_up import WakeUpTimer
from vocalis.speech import SpeechHandle
from vocalis.stages import Observer, Observers
from vocalis.states import SESSION_EVENTS, AgentState, UserState
from vocalis.text import has_text, text_argument
from vocalis.tools.runner import ToolRunner

if TYPE_CHECKING:
    from vocalis.observability.metrics import TurnMetrics
    from vocalis.observability.telemetry import SessionTracer
    from vocalis.pipeline.base import Pipeline
    from vocalis.session.agent import Agent
    from vocalis.session.background import BackgroundAudioConfig
    from vocalis.session.flow import ConversationFlow

_session_ids = itertools.count(1)


class AgentSession(SessionEventEmitter):
    """Runs one conversation: an agent on a pipeline, over a transport.

    Events (handlers get one ``dict`` payload): ``user_state_changed`` and ``agent_state_changed``
    (``{"state", "old_state"}``, only on change, but for the first: ``starting`` when
    :meth:`start` begins, from ``starting``), ``on_speech_in`` (user transcripts: ``{"text",
    "is_final", "language"}``), ``on_speech_out`` (agent text as it starts playing: ``{"text",
    "speech_id"}``), ``user_turn`` and ``agent_turn`` (committed turns), ``function_call``
    (``{"call_id", "name", "arguments", "output", "is_error"}``), ``agent_handoff``,
    ``on_wake_up``, ``error`` (``{"source", "message", "recoverable"}``) and ``close``.

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
        check_session_arguments(agent, wake_up, background_audio, error_message, limits)
        self.id = session_id or f"session_{next(_session_ids)}"
        self.error_message = error_message.strip() if error_message and error_message.strip() else None
        self.close_reason = ""
        self.agent = agent
        self.pipeline = pipeline
        self.conversation_flow = conversation_flow
        self.wake_up = wake_up
        self.background_audio = background_audio
        self.on_wake_up: Callable[[], object] | None = None
        self.transport: Transport | None = None
        self.limits = limits if limits is not None else SessionLimits()
        self.audio_output: AudioOutput = AudioOutput()
        self.tools = ToolRunner(
            SessionToolHost(self),
            timeout=tool_timeout,
            max_steps=max_tool_steps,
            max_parallel=max_parallel_tools,
            max_output_chars=self.limits.max_tool_output_chars,
        )
        self._states = SessionStates(self.emit)
        self._wake = WakeUpTimer(self)
        self._lifecycle = SessionLifecycle(self, self._states, self._wake)
        self._speech = self._lifecycle.speech
        self.recorder = MetricsRecorder(self, record_text=record_text, max_turns=self.limits.max_metrics_turns)
        self.observers = Observers()  # told each utterance's stages: metrics first
        self.observers.add(self.recorder)
        self.tracer: SessionTracer | None = None
        self._started = False
        self.start_error: Exception | None = None  # why start() failed (the session is closed then)
        self._closed = False
        self._close_task: asyncio.Task[None] | None = None
        agent.session = self
        if conversation_flow is not None and conversation_flow.agent is None:
            conversation_flow.agent = agent
        wire_agent_hooks(self)  # agent.on_speech_in / on_speech_out, as VideoSDK calls them
        register_with_job(self)  # closed on the job's shutdown, when made inside one

    EVENTS = SESSION_EVENTS
    """Events a session emits (plugins and pipelines may add their own)."""

    # -- state ---------------------------------------------------------------
    @property
    def user_state(self) -> UserState:
        """What the user is doing now."""
        return self._states.user

    @property
    def agent_state(self) -> AgentState:
        """What the agent is doing now."""
        return self._states.agent

    @property
    def current_speech(self) -> SpeechHandle | None:
        """The utterance being generated or played, if any."""
        return self._speech.current

    @property
    def busy(self) -> bool:
        """Whether the conversation has work in flight: the user's turn (speech,
        words still being recognised, an end of turn being decided) or agent
        speech running or queued. False once everything said was answered."""
        return self._speech.busy or self.pipeline.turn_pending

    @property
    def metrics(self) -> list[TurnMetrics]:
        """Metrics of the agent turns so far (the newest ``limits.max_metrics_turns``)."""
        return self.recorder.turns

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run (or is running)."""
        return self._closed

    # -- lifecycle -------------------------------------------------------------
    async def start(self, transport: Transport | None = None, *, resume: bool = False, **options: object) -> None:
        """Start the session: providers, tool sources, transport, ``on_enter``.

        Emits ``agent_state_changed`` with ``starting`` first.

        Args:
            transport: Where audio comes from and goes to. Without one the
                session still runs text turns, and agent audio is only timed.
            resume: The agent's chat context holds an earlier conversation
                that this session continues (a client reconnected): the
                agent's ``on_enter`` (usually a greeting) is not run again.
            **options: Passed to the pipeline's ``attach(session, **options)``
                (as VideoSDK passes them to its pipeline's ``start``): options
                of a custom pipeline for this session. The built-in pipelines
                take none.

        Raises:
            RuntimeError: The session was started before.
            TypeError: The pipeline's ``attach`` does not take ``options``.
            Exception: What failed the start (a key refused), reported first as a
                non-recoverable ``error``; the session is closed then (``start_error``).
        """
        if self._started:
            raise RuntimeError("session already started")
        check_start_options(self.pipeline, options)
        self._started = True
        self.emit("agent_state_changed", {"state": AgentState.STARTING, "old_state": AgentState.STARTING})
        with session_context(self.id):
            await self._lifecycle.start(transport, enter=not resume, options=options)

    def trace(self, tracer_provider: object = None) -> SessionTracer:
        """Send this session's spans to OpenTelemetry (once; needs ``vocalis[otel]``).

        Called by :meth:`start` when a global SDK tracer provider is set.
        """
        if self.tracer is None:
            self.tracer = attach_tracing(self, tracer_provider)
        return self.tracer

    def add_observer(self, observer: Observer) -> None:
        """Tell ``observer`` of each stage of every later utterance (see :mod:`vocalis.stages`)."""
        self.observers.add(observer)

    async def leave(self) -> None:
        """Leave the conversation (closes the session)."""
        await self.close()

    async def close(self, *, reason: str = "closed") -> None:
        """Stop everything and release resources. Safe to call many times.

        Runs ``agent.on_exit()``, pipeline and flow cleanup, agent cleanup and
        transport close once each; a failure in one does not skip the others.

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
            await self._lifecycle.close(started=self._started)

    # -- errors --------------------------------------------------------------------
    def report_error(self, source: str, error: BaseException | str, *, recoverable: bool = True) -> None:
        """Emit an ``error`` event and log it; the session keeps running.

        Args:
            source: What failed: a provider label (``"stt:whisper"``), a tool,
                a hook.
            error: The exception or a message.
            recoverable: Whether the session could continue.
        """
        source, message, recoverable, kind = describe_error(source, error, recoverable=recoverable)
        message = redact(message, provider_secrets(self.pipeline.providers().values()))  # replies may echo API keys
        logger.error("{} failed: {}", source, message)
        self.emit("error", {"source": source, "message": message, "recoverable": recoverable, "kind": kind})

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
    async def say(self, message: str, *, interruptible: bool = True, wait_for_playback: bool = False) -> SpeechHandle:
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
        message = text_argument(message, "say", "message")
        handle = SpeechHandle("say", allow_interruptions=interruptible)
        if not has_text(message):
            self.report_error("say", "empty message: nothing to say")
            handle._discard()
            return handle
        self._speech.enqueue(handle, lambda: self.pipeline.speak(handle, message))
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
        text = text_argument(text, "send_text", "text")
        if not has_text(text):
            self.report_error("send_text", "empty text: no user turn")
            handle = SpeechHandle("user_turn")
            handle._discard()
            return handle
        self.interrupt()
        self.emit("on_speech_in", {"text": text.strip(), "is_final": True, "language": None})
        handle = self._speech.start_user_turn(text.strip())
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
        instructions = text_argument(instructions, "reply", "instructions")
        handle = SpeechHandle("reply", allow_interruptions=interruptible)
        if not has_text(instructions) or self._speech.reply_pending():
            logger.info(
                "reply() discarded: {}",
                "empty instructions" if not has_text(instructions) else "a reply is already running",
            )
            handle._discard()
            return handle
        self._speech.enqueue(handle, lambda: self.pipeline.generate_reply(handle, instructions=instructions))
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
        handle = self._speech.current
        return handle.interrupt(force=force) if handle is not None else False

    def request_handoff(self, agent: Agent) -> None:
        """Switch to ``agent`` once the current utterance ends."""
        self._lifecycle.pending_handoff = agent

    def _arm_wake_up(self) -> None:
        self._wake.arm()

    def emit_task(self, awaitable: Awaitable[object], source: str) -> None:
        """Run a user callback's coroutine as a tracked task; report failures."""

        async def runner() -> None:
            with session_context(self.id):
                await self._lifecycle.guarded(awaitable, source)

        task = asyncio.ensure_future(runner())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def __repr__(self) -> str:
        return f"<AgentSession {self.id} agent={self.agent.name!r} state={self._states.agent.value}>"
