"""Run scenarios in text mode and check each turn's expectations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from vocalis.evaluation.audio import evaluate_audio
from vocalis.evaluation.judge import Judge, LLMJudge
from vocalis.evaluation.result import Expect, TurnResult
from vocalis.evaluation.run import DEFAULT_TURN_TIMEOUT, Evaluation, evaluate
from vocalis.evaluation.scenario import Expectations, Scenario, UserTurn
from vocalis.pipeline.base import Pipeline
from vocalis.providers.stt import STT
from vocalis.providers.tts import TTS
from vocalis.session.agent import Agent

__all__ = [
    "AgentFactory",
    "AudioSides",
    "Mode",
    "ScenarioOutcome",
    "TurnOutcome",
    "check_turn",
    "run_scenario",
    "run_scenarios",
]

AgentFactory = Callable[[], tuple[Agent, Pipeline]]
"""Builds a fresh agent and pipeline for each scenario (an agent runs one session)."""

Mode = Literal["text", "audio"]
"""text: each user line is typed into the session; audio: it is spoken into it."""


@dataclass(frozen=True, slots=True)
class AudioSides:
    """The user's side in audio mode (unset: the pipeline's own TTS and STT).

    Attributes:
        voice: Speaks the user's lines.
        listener: Transcribes the agent's audio.
    """

    voice: TTS | None = None
    listener: STT | None = None


@dataclass(slots=True)
class TurnOutcome:
    """One turn of a scenario: what happened and which expectations failed."""

    turn: UserTurn
    result: TurnResult | None
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """Every expectation held."""
        return not self.failures


@dataclass(slots=True)
class ScenarioOutcome:
    """A scenario's turns, or the error that stopped it."""

    scenario: Scenario
    turns: list[TurnOutcome] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """No error and every turn passed."""
        return self.error is None and all(turn.passed for turn in self.turns)


def _first_line(error: AssertionError) -> str:
    # Expect's messages end with the turn's listing; the report shows it once per turn.
    return str(error).split("\n", 1)[0]


async def check_turn(result: TurnResult, expect: Expectations, judge: Judge | None) -> list[str]:
    """Check ``expect`` on ``result``; returns one line per failed expectation."""
    failures: list[str] = []
    checks = Expect(result)
    handoff, max_latency = expect.handoff, expect.max_latency
    synchronous: list[Callable[[], object]] = [
        *(lambda call=call: checks.tool_call(call.name, **call.arguments) for call in expect.tool_calls),
        *([lambda: checks.handoff(handoff)] if handoff else []),
        *(lambda part=part: checks.reply.contains(part) for part in expect.contains),
        *(lambda pattern=pattern: checks.reply.matches(pattern) for pattern in expect.matches),
        *([lambda: checks.latency_below(max_latency)] if max_latency is not None else []),
        *([checks.no_interruption] if expect.no_interruption else []),
    ]
    for check in synchronous:
        try:
            check()
        except AssertionError as exc:
            failures.append(_first_line(exc))
    for intent in expect.judge:
        if judge is None:
            failures.append(f"cannot judge {intent!r}: no judge (the pipeline has no LLM)")
            continue
        try:
            await checks.reply.judged(judge, intent=intent)
        except AssertionError as exc:
            failures.append(_first_line(exc))
    return failures


def _default_judge(pipeline: Pipeline) -> Judge | None:
    llm = getattr(pipeline, "llm", None)
    from vocalis.providers.llm import LLM

    return LLMJudge(llm) if isinstance(llm, LLM) else None


@asynccontextmanager
async def _session(
    agent: Agent, pipeline: Pipeline, mode: Mode, sides: AudioSides, timeout: float
) -> AsyncIterator[Evaluation]:
    if mode == "audio":
        async with evaluate_audio(
            agent, pipeline, voice=sides.voice, listener=sides.listener, timeout=timeout
        ) as spoken:
            yield spoken
    else:
        async with evaluate(agent, pipeline, timeout=timeout) as typed:
            yield typed


async def _say(ev: Evaluation, turn: UserTurn) -> TurnResult:
    if turn.audio is not None:
        from vocalis.evaluation.audio import AudioEvaluation

        assert isinstance(ev, AudioEvaluation)  # checked before the session started
        return await ev.play(turn.audio)
    assert turn.text is not None  # a turn has text or audio (scenario.py)
    return await ev.say(turn.text)


async def run_scenario(
    scenario: Scenario,
    factory: AgentFactory,
    *,
    judge: Judge | None = None,
    timeout: float = DEFAULT_TURN_TIMEOUT,
    mode: Mode = "text",
    sides: AudioSides | None = None,
) -> ScenarioOutcome:
    """Run one scenario on a fresh agent and pipeline.

    Args:
        scenario: The scenario.
        factory: Builds the agent and its pipeline.
        judge: Judges ``judge`` expectations (default: the pipeline's LLM).
        timeout: Loop seconds each turn may take.
        mode: ``text`` types each line; ``audio`` speaks it (and plays
            ``audio:`` turns), and the reply checked is the agent's audio
            transcribed.
        sides: The voice and listener of audio mode.
    """
    loop = asyncio.get_running_loop()
    outcome = ScenarioOutcome(scenario)
    began = loop.time()
    if mode == "text":
        for turn in scenario.turns:
            if turn.audio is not None:
                outcome.error = f"turn {turn.label!r} is an audio file: it needs audio mode (--mode audio)"
                return outcome
    try:
        agent, pipeline = factory()
        judge = judge or _default_judge(pipeline)
        async with _session(agent, pipeline, mode, sides or AudioSides(), timeout) as ev:
            for turn in scenario.turns:
                start = loop.time()
                result = await _say(ev, turn)
                failures = await check_turn(result, turn.expect, judge)
                outcome.turns.append(TurnOutcome(turn, result, failures, loop.time() - start))
    except Exception as exc:  # a broken agent or provider fails the scenario, not the run
        outcome.error = f"{type(exc).__name__}: {exc}"
    outcome.seconds = loop.time() - began
    return outcome


async def run_scenarios(
    scenarios: list[Scenario],
    factory: AgentFactory,
    *,
    judge: Judge | None = None,
    timeout: float = DEFAULT_TURN_TIMEOUT,
    on_outcome: Callable[[ScenarioOutcome], object] | None = None,
    mode: Mode = "text",
    sides: AudioSides | None = None,
) -> list[ScenarioOutcome]:
    """Run scenarios one after another; ``on_outcome`` sees each as it finishes."""
    outcomes = []
    for scenario in scenarios:
        outcome = await run_scenario(scenario, factory, judge=judge, timeout=timeout, mode=mode, sides=sides)
        if on_outcome is not None:
            on_outcome(outcome)
        outcomes.append(outcome)
    return outcomes
