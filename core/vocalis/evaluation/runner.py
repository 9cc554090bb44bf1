"""Run scenarios in text mode and check each turn's expectations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from vocalis.evaluation.judge import Judge, LLMJudge
from vocalis.evaluation.result import Expect, TurnResult
from vocalis.evaluation.run import DEFAULT_TURN_TIMEOUT, evaluate
from vocalis.evaluation.scenario import Expectations, Scenario, UserTurn
from vocalis.pipeline.base import Pipeline
from vocalis.session.agent import Agent

__all__ = ["AgentFactory", "ScenarioOutcome", "TurnOutcome", "check_turn", "run_scenario", "run_scenarios"]

AgentFactory = Callable[[], tuple[Agent, Pipeline]]
"""Builds a fresh agent and pipeline for each scenario (an agent runs one session)."""


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


async def run_scenario(
    scenario: Scenario,
    factory: AgentFactory,
    *,
    judge: Judge | None = None,
    timeout: float = DEFAULT_TURN_TIMEOUT,
) -> ScenarioOutcome:
    """Run one scenario in text mode on a fresh agent and pipeline.

    Args:
        scenario: The scenario.
        factory: Builds the agent and its pipeline.
        judge: Judges ``judge`` expectations (default: the pipeline's LLM).
        timeout: Loop seconds each turn may take.
    """
    loop = asyncio.get_running_loop()
    outcome = ScenarioOutcome(scenario)
    began = loop.time()
    for turn in scenario.turns:
        if turn.text is None:
            outcome.error = f"turn {turn.label!r} is a WAV file: it needs audio mode"
            return outcome
    try:
        agent, pipeline = factory()
        judge = judge or _default_judge(pipeline)
        async with evaluate(agent, pipeline, timeout=timeout) as ev:
            for turn in scenario.turns:
                assert turn.text is not None  # checked above
                start = loop.time()
                result = await ev.say(turn.text)
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
) -> list[ScenarioOutcome]:
    """Run scenarios one after another; ``on_outcome`` sees each as it finishes."""
    outcomes = []
    for scenario in scenarios:
        outcome = await run_scenario(scenario, factory, judge=judge, timeout=timeout)
        if on_outcome is not None:
            on_outcome(outcome)
        outcomes.append(outcome)
    return outcomes
