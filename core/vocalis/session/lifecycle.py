"""A session's lifecycle: its components started, switched and stopped, in order.

Start-up wires the transport (audio, forwarded events, background audio),
starts the tool sources, attaches the pipeline, starts the speech scheduler
and the transport, then runs the agent's ``on_enter``. A handoff switches
agents between utterances. Shutdown interrupts all speech (letting the
running utterance record what was heard), then closes every component once;
a failure in one is reported and does not skip the others.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.observability.telemetry import tracing_configured
from vocalis.session.core import run_guarded
from vocalis.session.hosts import PipelineHost
from vocalis.session.session_hooks import attach_pipeline
from vocalis.session.speech_queue import SpeechQueue
from vocalis.states import FORWARDED_EVENTS, AgentState

if TYPE_CHECKING:
    from vocalis.event_types import AgentStateChangedEvent
    from vocalis.providers.transport import AudioOutput, Transport
    from vocalis.session.agent import Agent
    from vocalis.session.background import BackgroundAudioConfig, BackgroundMixer
    from vocalis.session.core import SessionCore
    from vocalis.session.state_machine import SessionStates
    from vocalis.session.wake_up import WakeUpTimer

# Seconds close() waits for an interrupted utterance to record what was heard.
_CLOSE_GRACE = 1.0


class SessionLifecycle:
    """Starts, switches and stops the components of one session.

    It makes the session's speech queue (which switches agents between
    utterances) and the adapter its pipeline is attached to.

    Args:
        session: The session.
        states: Its user and agent states.
        wake_up: Its wake-up timer.

    Attributes:
        speech: The session's speech queue.
        pending_handoff: The agent to switch to once the current utterance ends.
    """

    def __init__(self, session: SessionCore, states: SessionStates, wake_up: WakeUpTimer) -> None:
        self._session = session
        self._states = states
        self._wake_up = wake_up
        self.speech = self._speech = SpeechQueue(session, states, wake_up, self.handoff)
        self._host = PipelineHost(session, self._speech, states, wake_up)
        self._mixer: BackgroundMixer | None = None
        self.pending_handoff: Agent | None = None

    async def start(
        self, transport: Transport | None, *, enter: bool = True, options: Mapping[str, object] | None = None
    ) -> None:
        """Start the components, in order, and run the agent's ``on_enter`` (if ``enter``).

        ``options`` go to the pipeline's ``attach`` (see ``AgentSession.start``).
        A component that fails to start is reported (a non-recoverable
        ``error`` naming it), the session is closed, and the error raised.
        """
        try:
            await self._start(transport, options or {})
        except Exception as exc:
            session = self._session
            session.start_error = exc
            session.report_error("session start", exc, recoverable=False)
            logger.error("the session could not start: closing it")
            await session.close(reason="start failed")
            raise
        session = self._session
        self._states.set_agent(AgentState.IDLE)
        self._wake_up.arm()
        if session.tracer is None and tracing_configured():
            session.trace()
        logger.info("session {} with agent {!r}", "started" if enter else "resumed", session.agent.name)
        if enter:
            await self.guarded(session.agent.on_enter(), "agent.on_enter")

    async def _start(self, transport: Transport | None, options: Mapping[str, object]) -> None:
        session = self._session
        session.recorder.start()
        self._speech.open()
        if transport is not None:
            session.transport = transport
            session.audio_output = transport.audio_output
            session.on_any(self._forward_to_transport)
            if session.background_audio is not None:
                self._start_background(transport.audio_output, session.background_audio)
        session.audio_output.max_ahead = session.limits.max_agent_audio_ahead
        await session.tools.start_sources(session.agent)
        await attach_pipeline(session.pipeline, self._host, options)
        self._speech.start()
        if session.transport is not None:
            await session.transport.start(session)

    def _start_background(self, output: AudioOutput, config: BackgroundAudioConfig) -> None:
        from vocalis.session.background import BackgroundMixer

        mixer = BackgroundMixer(output, config)
        self._mixer = mixer
        self._session.audio_output = mixer
        mixer.start()

        def follow_state(event: AgentStateChangedEvent) -> None:
            mixer.thinking = event["state"] is AgentState.THINKING

        self._session.on("agent_state_changed", follow_state)

    def _forward_to_transport(self, event: str, args: tuple[Any, ...]) -> None:
        """Let the transport show transcripts and states to the remote side."""
        transport = self._session.transport
        if event in FORWARDED_EVENTS and transport is not None and args:
            payload = {k: (v.value if isinstance(v, StrEnum) else v) for k, v in args[0].items()}
            transport.send_event(event, payload)

    async def guarded(self, awaitable: Awaitable[Any], source: str) -> None:
        """Await a hook or a component's call; a failure is reported, not raised."""
        await run_guarded(awaitable, source, self._session.report_error)

    async def handoff(self) -> None:
        """Switch to the pending agent, if any (between utterances)."""
        session = self._session
        new, self.pending_handoff = self.pending_handoff, None
        if new is None or new is session.agent:
            return
        old = session.agent
        await self.guarded(old.on_exit(), "agent.on_exit")
        if new.inherit_context:
            new.inherit_from(old)
        new.session = session
        session.agent = new
        if session.conversation_flow is not None:
            session.conversation_flow.agent = new
        await self.guarded(session.tools.start_sources(new), "tool sources")
        await self.guarded(session.pipeline.on_agent_changed(), "pipeline")
        logger.info("handoff from {!r} to {!r}", old.name, new.name)
        session.emit("agent_handoff", {"from": old.name, "to": new.name})
        await self.guarded(new.on_enter(), "agent.on_enter")

    async def close(self, *, started: bool) -> None:
        """Stop all speech and close every component once, then emit ``close``.

        Args:
            started: Whether the session started (the agent's ``on_exit`` runs then).
        """
        started = started and self._session.start_error is None  # on_exit only follows an on_enter
        session = self._session
        guarded = self.guarded
        self._states.set_agent(AgentState.CLOSING)
        self._wake_up.cancel()
        current = self._speech.interrupt_all()
        session.audio_output.clear_buffer()
        if current is not None and not current.done():
            # Let the interrupted utterance wind down, so its agent_turn
            # (what was heard) and its chat message are recorded; a
            # provider that ignores cancellation gets cut off below.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(current.wait()), _CLOSE_GRACE)
        await self._speech.aclose()
        await guarded(session.tools.aclose(), "tool calls")
        if started:
            await guarded(session.agent.on_exit(), "agent.on_exit")
        if session.pipeline.session in (None, self._host):  # not a pipeline another session runs on
            await guarded(session.pipeline.aclose(), "pipeline")
        if session.conversation_flow is not None:
            await guarded(session.conversation_flow.cleanup(), "conversation_flow.cleanup")
        await guarded(session.agent.cleanup(), "agent.cleanup")
        if self._mixer is not None:
            await guarded(self._mixer.aclose(), "background audio")
        if session.transport is not None:
            await guarded(session.transport.aclose(), session.transport.label)
        summary = session.recorder.close()
        session.emit("close", {"session_id": session.id, "summary": summary, "reason": session.close_reason})
        await session.aclose_handlers()
        logger.info("session closed")
