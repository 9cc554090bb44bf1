"""The session as its components see it: small adapters behind their Protocols.

The pipeline gets a :class:`PipelineHost` (a
:class:`~vocalis.pipeline.ports.SessionPort`), the tool runner a
:class:`SessionToolHost` (a :class:`~vocalis.tools.runner.ToolHost`). They
keep the session's own API to what applications use, and decide what each
report from a component does to the session's states, speech queue and
wake-up timer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from vocalis.session.agent import Agent
from vocalis.session.core import run_guarded
from vocalis.speech import SpeechHandle

if TYPE_CHECKING:
    from vocalis.providers.transport import AudioOutput, Transport
    from vocalis.session.core import SessionCore
    from vocalis.session.flow import ConversationFlow
    from vocalis.session.speech_queue import SpeechQueue
    from vocalis.session.state_machine import SessionStates
    from vocalis.session.wake_up import WakeUpTimer
    from vocalis.stages import StageEvent, UserTurnTiming
    from vocalis.states import AgentState
    from vocalis.tools.runner import ToolRunner


class PipelineHost:
    """The session, as its pipeline sees it (a :class:`~vocalis.pipeline.ports.SessionPort`).

    Args:
        session: The session.
        speech: Its speech queue.
        states: Its user and agent states.
        wake_up: Its wake-up timer.
    """

    def __init__(self, session: SessionCore, speech: SpeechQueue, states: SessionStates, wake_up: WakeUpTimer) -> None:
        self._session = session
        self._speech = speech
        self._states = states
        self._wake_up = wake_up

    # -- views -------------------------------------------------------------------
    @property
    def agent(self) -> Agent:
        """The active agent."""
        return self._session.agent

    @property
    def tools(self) -> ToolRunner:
        """The session's tool runner."""
        return self._session.tools

    @property
    def audio_output(self) -> AudioOutput:
        """Where agent audio plays."""
        return self._session.audio_output

    @property
    def transport(self) -> Transport | None:
        """The session's transport, if any."""
        return self._session.transport

    @property
    def closed(self) -> bool:
        """Whether the session is closing or closed."""
        return self._session.closed

    @property
    def error_message(self) -> str | None:
        """Spoken when a turn fails before anything was heard."""
        return self._session.error_message

    @property
    def current_speech(self) -> SpeechHandle | None:
        """The utterance running now, if any."""
        return self._speech.current

    @property
    def conversation(self) -> FlowHooks | None:
        """The session's conversation flow, if it has one."""
        flow = self._session.conversation_flow
        return FlowHooks(flow, self._session) if flow is not None else None

    # -- reports -----------------------------------------------------------------
    def observe(self, event: StageEvent) -> None:
        """Tell the session's observers (its metrics recorder first)."""
        self._session.observers.notify(event)

    def emit(self, event: str, *args: Any) -> None:
        """Emit a session event."""
        self._session.emit(event, *args)

    def report_error(self, source: str, error: BaseException | str, *, recoverable: bool = True) -> None:
        """Report a failure through the session's ``error`` event."""
        self._session.report_error(source, error, recoverable=recoverable)

    def set_agent_state(self, state: AgentState) -> None:
        """Move the agent to ``state``."""
        self._states.set_agent(state)

    def user_speech_started(self) -> None:
        """The user started speaking: they are active, and the agent listens if idle."""
        self._wake_up.user_activity()
        self._states.user_speech_started(agent_busy=self._speech.current is not None)

    def user_speech_stopped(self) -> None:
        """The user stopped speaking: a new idle period may begin."""
        busy = self._speech.current is not None
        self._states.user_speech_stopped(agent_busy=busy, agent_audible=busy and self.audio_output.speaking)
        self._wake_up.arm()

    def agent_audio_started(self) -> None:
        """The first audio of an utterance reached the output."""
        self._states.agent_audio_started()

    def user_activity(self) -> None:
        """Words of the user were recognised."""
        self._wake_up.user_activity()

    # -- speech ------------------------------------------------------------------
    def start_user_turn(self, transcript: str, timing: UserTurnTiming | None = None) -> SpeechHandle:
        """Commit the user's turn: its reply goes first in the queue."""
        return self._speech.start_user_turn(transcript, timing=timing)

    def enqueue(self, handle: SpeechHandle, run: Callable[[], Awaitable[None]], *, front: bool = False) -> SpeechHandle:
        """Queue an utterance."""
        return self._speech.enqueue(handle, run, front=front)

    def apologize(self) -> None:
        """A user turn was lost to a provider failure: say ``error_message``, if set."""
        session = self._session
        message = session.error_message
        if message is None or session.closed or not self._speech.started:
            return
        handle = SpeechHandle("say")
        self._speech.enqueue(handle, lambda: session.pipeline.speak(handle, message))


class FlowHooks:
    """A :class:`ConversationFlow` around one user turn
    (a :class:`~vocalis.pipeline.ports.ConversationHooks`); its failures are reported.

    Args:
        flow: The session's conversation flow.
        session: The session (for its error reports).
    """

    def __init__(self, flow: ConversationFlow, session: SessionCore) -> None:
        self._flow = flow
        self._session = session

    async def turn_started(self, transcript: str) -> None:
        """Run ``on_turn_start``."""
        await run_guarded(
            self._flow.on_turn_start(transcript), "conversation_flow.on_turn_start", self._session.report_error
        )

    def text_for(self, transcript: str, llm_text: AsyncIterator[str]) -> AsyncIterator[str]:
        """The flow's ``run``, with ``process_with_llm`` streaming ``llm_text``."""
        self._flow._llm_stream = lambda: llm_text
        return self._flow.run(transcript)

    async def turn_ended(self) -> None:
        """Close ``process_with_llm`` and run ``on_turn_end``."""
        self._flow._llm_stream = None
        await run_guarded(self._flow.on_turn_end(), "conversation_flow.on_turn_end", self._session.report_error)


class SessionToolHost:
    """Hands a :class:`~vocalis.tools.runner.ToolRunner` the session's events,
    errors and handoffs, and decides which tool results are agents to hand over to.

    Args:
        session: The session the runner serves.
    """

    def __init__(self, session: SessionCore) -> None:
        self._session = session

    @property
    def session(self) -> SessionCore:
        """The session, as tools see it in their ``ToolContext``."""
        return self._session

    def emit(self, event: str, *args: Any) -> None:
        """Emit a session event."""
        self._session.emit(event, *args)

    def report_error(self, source: str, error: BaseException | str, *, recoverable: bool = True) -> None:
        """Report a failure through the session's ``error`` event."""
        self._session.report_error(source, error, recoverable=recoverable)

    def hand_over(self, value: object) -> Agent | None:
        """Switch to ``value`` once the current utterance ends, if it is an :class:`Agent`."""
        if not isinstance(value, Agent):
            return None
        self._session.request_handoff(value)
        return value
