"""Scenario files, the scenario runner, JUnit XML and `vocalis eval`."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from vocalis.cli.eval_cmd import eval_command
from vocalis.evaluation import ScenarioError, load_scenarios, parse_scenarios
from vocalis.evaluation.report import junit_xml
from vocalis.evaluation.runner import run_scenarios
from vocalis.pipeline.cascading import CascadingPipeline
from vocalis.session.agent import Agent
from vocalis.session.assistant import DefaultAssistant
from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, run_virtual

EXAMPLE = Path(__file__).parents[2] / "examples" / "scenarios" / "assistant.yaml"


def make_assistant(reply: str = "I am Vocalis, happy to help.") -> tuple[Agent, CascadingPipeline]:
    llm = FakeLLM([reply])
    return DefaultAssistant(), CascadingPipeline(
        stt=FakeSTT([]), llm=llm, tts=FakeTTS(), vad=FakeVAD(), turn_detector=None
    )


def failing_assistant() -> tuple[Agent, CascadingPipeline]:
    return make_assistant("")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "expected a non-empty 'scenarios' list"),
        ({"scenarios": [{"name": "a"}]}, r"scenarios\[0\] \(a\): expected a non-empty 'turns' list"),
        ({"scenarios": [{"turns": [{"expect": {}}]}]}, r"turns\[0\]: give exactly one of 'user'"),
        ({"scenarios": [{"turns": [{"user": "hi", "expect": {"containz": "x"}}]}]}, "unknown expectation.*containz"),
        ({"scenarios": [{"turns": [{"user": "hi", "expect": {"matches": "("}}]}]}, "invalid regular expression"),
        (
            {"scenarios": [{"turns": [{"user": "hi", "expect": {"max_latency": -1}}]}]},
            "max_latency: expected a positive",
        ),
        ({"scenarios": [{"turns": [{"user": "hi", "expect": {"tool_call": {"args": 1}}}]}]}, "tool_call: expected"),
    ],
)
def test_invalid_scenarios_say_where_and_why(data: object, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenarios(data, source="s.yaml")


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios: [\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="bad.yaml: invalid YAML"):
        load_scenarios(bad)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenarios(tmp_path / "none.yaml")


def test_the_shipped_example_runs_and_passes_with_fakes() -> None:
    scenarios = load_scenarios(EXAMPLE)
    assert [s.name for s in scenarios] == ["greeting", "arithmetic"]
    outcomes = run_virtual(run_scenarios(scenarios, make_assistant))
    assert all(o.passed for o in outcomes), [o.turns for o in outcomes]
    failed = run_virtual(run_scenarios(scenarios, failing_assistant))
    assert not any(o.passed for o in failed)
    assert "expected the reply to match" in failed[0].turns[0].failures[0]


def test_junit_xml_marks_failures() -> None:
    scenarios = load_scenarios(EXAMPLE)
    outcomes = run_virtual(run_scenarios(scenarios, make_assistant))
    outcomes += run_virtual(run_scenarios(scenarios[:1], failing_assistant))
    root = ET.fromstring(junit_xml(outcomes))
    assert root.tag == "testsuites" and root.get("tests") == "4" and root.get("failures") == "1"
    failures = root.findall(".//testcase/failure")
    assert len(failures) == 1 and "expected the reply to match" in (failures[0].get("message") or "")


def test_cli_exits_non_zero_on_failure_and_writes_junit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent_file = tmp_path / "agents.py"
    agent_file.write_text("from test_eval_scenarios import make_assistant, failing_assistant\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    ok = runner.invoke(eval_command, [str(EXAMPLE), "--agent", "agents.py:make_assistant"])
    assert ok.exit_code == 0, ok.output
    assert "PASS  greeting" in ok.output and "2 passed, 0 failed" in ok.output
    junit = tmp_path / "out.xml"
    bad = runner.invoke(eval_command, [str(EXAMPLE), "--agent", "agents.py:failing_assistant", "--junit", str(junit)])
    assert bad.exit_code == 1
    assert "FAIL  turn 1: Hello! Who are you?" in bad.output and "what happened:" in bad.output
    assert ET.parse(junit).getroot().get("failures") == "3"
    broken = tmp_path / "broken.yaml"
    broken.write_text("scenarios: []\n", encoding="utf-8")
    result = runner.invoke(eval_command, [str(broken)])
    assert result.exit_code != 0 and "expected a non-empty 'scenarios' list" in result.output
