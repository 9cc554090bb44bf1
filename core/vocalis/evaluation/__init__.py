"""Evaluate agents end to end: scenarios, a fluent expectation API and judges.

``vocalis eval SCENARIOS.yaml`` runs scenario files; in pytest, use
:func:`evaluate` and each turn's ``expect``::

    async with evaluate(agent, pipeline) as ev:
        result = await ev.say("What's 2+2?")
        result.expect.tool_call("calculate", expression="2+2")
        result.expect.reply.contains("4")

:func:`evaluate_audio` does the same with the whole stack: the user's lines
are spoken into the session and the agent's audio is transcribed back.
"""

from vocalis.evaluation.audio import AudioEvaluation, SpokenTurnsTransport, evaluate_audio
from vocalis.evaluation.judge import Judge, LLMJudge, Verdict
from vocalis.evaluation.result import Expect, ExpectReply, ToolCall, TurnEvent, TurnResult, arguments_match
from vocalis.evaluation.run import Evaluation, evaluate, run_turn, wait_until_idle
from vocalis.evaluation.scenario import (
    Expectations,
    Scenario,
    ScenarioError,
    ToolCallExpectation,
    UserTurn,
    load_scenarios,
    parse_scenarios,
)

__all__ = [
    "AudioEvaluation",
    "Evaluation",
    "Expect",
    "ExpectReply",
    "Expectations",
    "Judge",
    "LLMJudge",
    "Scenario",
    "ScenarioError",
    "SpokenTurnsTransport",
    "ToolCall",
    "ToolCallExpectation",
    "TurnEvent",
    "TurnResult",
    "UserTurn",
    "Verdict",
    "arguments_match",
    "evaluate",
    "evaluate_audio",
    "load_scenarios",
    "parse_scenarios",
    "run_turn",
    "wait_until_idle",
]
