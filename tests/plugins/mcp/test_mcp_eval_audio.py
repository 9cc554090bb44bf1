"""The MCP example's scenarios in audio mode, against the offline audio stack.

As tests/plugins/mcp/test_mcp_eval.py, with the whole audio path: the Piper
voice speaks the user's lines into the session, Silero finds the speech,
Whisper recognises it, and the reply (the real MCP time server's answer,
said by the scripted LLM) is spoken by Piper and transcribed back by Whisper,
which is the text the expectations check.
"""

from __future__ import annotations

import pytest

for _plugin in ("vocalis_silero", "vocalis_whisper", "vocalis_piper"):
    pytest.importorskip(_plugin, reason="needs the offline audio stack (tox env `all`)")

from test_mcp_eval import EXAMPLES, _mcp_agent, _tool_using_llm

from vocalis.evaluation import load_scenarios
from vocalis.evaluation.report import format_outcome
from vocalis.evaluation.runner import run_scenarios
from vocalis.pipeline.cascading import CascadingPipeline
from vocalis.session.agent import Agent
from vocalis.testing import FakeLLM, run_virtual
from vocalis_piper import PiperTTS
from vocalis_silero import SileroVAD
from vocalis_whisper import WhisperSTT

# Real models in threads on a virtual clock: far beyond 120 s on a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _make() -> tuple[Agent, CascadingPipeline]:
    pipeline = CascadingPipeline(
        stt=WhisperSTT(), llm=FakeLLM([_tool_using_llm]), tts=PiperTTS(), vad=SileroVAD(), turn_detector=None
    )
    return _mcp_agent(), pipeline


def test_the_mcp_example_scenarios_pass_spoken_and_heard() -> None:
    scenarios = load_scenarios(EXAMPLES / "scenarios" / "mcp_time.yaml")
    outcomes = run_virtual(run_scenarios(scenarios, _make, mode="audio"), max_virtual_time=None, real_time_io=True)
    report = "\n".join(
        "\n".join([format_outcome(o), *(t.result.describe() for t in o.turns if t.result)]) for o in outcomes
    )
    assert all(o.passed for o in outcomes), report
    first = outcomes[0].turns[0].result
    assert first is not None and first.heard is not None
    assert "tokyo" in first.recognized.lower()  # Whisper heard the Piper voice's question
    assert [call.name for call in first.tool_calls] == ["get_local_time"]
