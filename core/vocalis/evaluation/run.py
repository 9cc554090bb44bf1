"""Run user turns against a session and gather what happened in each.

Example (a pytest test; ``run_virtual`` makes waiting free)::

    async with evaluate(DefaultAssistant(), pipeline) as ev:
        result = await ev.say("What is 2 plus 2?")
        result.expect.tool_call("calculate", expression="2+2")
        result.expect.reply.contains("4")
        await result.expect.reply.judged(pipeline.llm, intent="gives the sum")
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from vocalis.evaluation.result import TurnEvent, TurnResult
from vocalis.pipeline.base import Pipeline
from vocalis.session.agent import Agent
from vocalis.session.agent_session import AgentSession

__all__ = ["Evaluation", "SessionRecorder", "evaluate", "finish_turn", "recorder_of", "run_turn", "wait_until_idle"]

DEFAULT_TURN_TIMEOUT = 120.0
"""Loop seconds a turn may take before the run gives up on it (models included)."""


class SessionRecorder:
    """Keeps every event of a session and the conversation's lines."""

    def __init__(self, session: AgentSession) -> None:
        self.events: list[TurnEvent] = []
        self.lines: list[str] = []
        session.on_any(self._record)

    def _record(self, name: str, args: tuple[object, ...]) -> None:
        payload = args[0] if args and isinstance(args[0], dict) else {}
        self.events.append(TurnEvent(asyncio.get_running_loop().time(), name, dict(payload)))
        if name == "user_turn":
            self.lines.append(f"user: {payload.get('text', '')}")
        elif name == "agent_turn" and payload.get("text"):
            self.lines.append(f"agent: {payload['text']}")


_recorders: weakref.WeakKeyDictionary[AgentSession, SessionRecorder] = weakref.WeakKeyDictionary()


def recorder_of(session: AgentSession) -> SessionRecorder:
    """The event recorder of ``session`` (made on first use; lives as long as the session)."""
    recorder = _recorders.get(session)
    if recorder is None:
        recorder = _recorders[session] = SessionRecorder(session)
    return recorder


async def wait_until_idle(session: AgentSession, timeout: float = DEFAULT_TURN_TIMEOUT) -> bool:
    """Wait until the session has nothing in flight; False when ``timeout`` passed first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # Polled: "busy" covers queued speech, tool rounds and handoff greetings,
    # which no single event marks the end of.
    while session.busy:
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def run_turn(session: AgentSession, text: str, *, timeout: float = DEFAULT_TURN_TIMEOUT) -> TurnResult:
    """Send ``text`` as a typed user turn and gather the agent's answer.

    Events are recorded from the first call on; call it on a started session
    (with or without a transport).

    Raises:
        TimeoutError: The agent was still busy after ``timeout`` loop seconds.
    """
    recorder = recorder_of(session)
    start = len(recorder.events)
    result = TurnResult(user=text, started_at=asyncio.get_running_loop().time())
    await session.send_text(text, wait_for_playback=False)
    if not await wait_until_idle(session, timeout):
        result.events = recorder.events[start:]
        raise TimeoutError(f"the agent did not finish answering within {timeout:g}s\n{result.describe()}")
    return finish_turn(result, recorder, start)


def finish_turn(result: TurnResult, recorder: SessionRecorder, start: int) -> TurnResult:
    """Give ``result`` the recorder's events from ``start`` on and the conversation so far."""
    result.events = recorder.events[start:]
    result.conversation = "\n".join(recorder.lines)
    return result


class Evaluation:
    """A running session to say things to (see :func:`evaluate`).

    Attributes:
        session: The session.
        opening: What the agent did on its own when the session started
            (a greeting from ``on_enter``), before the first turn.
        turns: Results of the turns so far.
    """

    def __init__(self, session: AgentSession, timeout: float) -> None:
        self.session = session
        self.timeout = timeout
        self.opening = TurnResult(user="", started_at=0.0)
        self.turns: list[TurnResult] = []

    async def say(self, text: str) -> TurnResult:
        """Send ``text`` as the user's next turn; returns what happened."""
        result = await run_turn(self.session, text, timeout=self.timeout)
        self.turns.append(result)
        return result


@asynccontextmanager
async def evaluate(
    agent: Agent,
    pipeline: Pipeline,
    *,
    timeout: float = DEFAULT_TURN_TIMEOUT,
    record_text: bool = True,
) -> AsyncIterator[Evaluation]:
    """Start a session without a transport (text mode) and close it afterwards.

    Args:
        agent: The agent under test.
        pipeline: Its pipeline (fakes in unit tests; the configured providers otherwise).
        timeout: Loop seconds each turn may take.
        record_text: Put the turns' text into the session's metrics.

    Raises:
        TimeoutError: The agent's opening did not finish within ``timeout``.
    """
    session = AgentSession(agent, pipeline, record_text=record_text)
    recorder = recorder_of(session)
    await session.start()
    try:
        evaluation = Evaluation(session, timeout)
        evaluation.opening.started_at = asyncio.get_running_loop().time()
        if not await wait_until_idle(session, timeout):
            raise TimeoutError(f"the agent's opening did not finish within {timeout:g}s")
        finish_turn(evaluation.opening, recorder, 0)
        yield evaluation
    finally:
        await session.close()
