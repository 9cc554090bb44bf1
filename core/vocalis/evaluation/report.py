"""Reports of scenario runs: readable text for people and JUnit XML for CI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from vocalis.evaluation.runner import ScenarioOutcome

__all__ = ["format_outcome", "format_summary", "junit_xml", "write_junit"]


def _indent(text: str, prefix: str = "      ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def format_outcome(outcome: ScenarioOutcome) -> str:
    """A scenario's result: PASS or FAIL, and for a failure what happened."""
    mark = "PASS" if outcome.passed else "FAIL"
    lines = [f"{mark}  {outcome.scenario.name} ({len(outcome.turns)}/{len(outcome.scenario.turns)} turns)"]
    if outcome.error is not None:
        lines.append(f"  error: {outcome.error}")
    for number, turn in enumerate(outcome.turns, 1):
        if turn.passed:
            lines.append(f"  ok    turn {number}: {turn.turn.label}")
            if turn.result is not None and turn.result.heard is not None:
                # Audio mode: what each side made of the other is worth seeing on a pass too.
                lines.append(f"          recognised: {turn.result.recognized!r}")
                lines.append(f"          heard:      {turn.result.heard!r}")
            continue
        lines.append(f"  FAIL  turn {number}: {turn.turn.label}")
        lines.extend(f"    - {failure}" for failure in turn.failures)
        if turn.result is not None:
            lines.append("    what happened:")
            lines.append(_indent(turn.result.describe()))
    return "\n".join(lines)


def format_summary(outcomes: list[ScenarioOutcome]) -> str:
    """One line: how many scenarios passed."""
    failed = sum(not outcome.passed for outcome in outcomes)
    passed = len(outcomes) - failed
    return f"{passed} passed, {failed} failed ({len(outcomes)} scenarios)"


def junit_xml(outcomes: list[ScenarioOutcome], *, suite: str = "vocalis eval") -> str:
    """JUnit XML: a test case per turn (a scenario's error is one more, failed).

    Test cases are named ``turn N: <what the user said>`` in a class named
    after the scenario, which is how CI pages group them.
    """
    root = ET.Element("testsuites")
    cases = failures = errors = 0
    total_time = 0.0
    for outcome in outcomes:
        suite_el = ET.SubElement(root, "testsuite", name=f"{suite}: {outcome.scenario.name}")
        s_fail = s_err = 0
        for number, turn in enumerate(outcome.turns, 1):
            case = ET.SubElement(
                suite_el,
                "testcase",
                classname=outcome.scenario.name,
                name=f"turn {number}: {turn.turn.label}",
                time=f"{turn.seconds:.3f}",
            )
            if turn.failures:
                s_fail += 1
                failure = ET.SubElement(case, "failure", message="; ".join(turn.failures))
                failure.text = "\n".join(turn.failures)
                if turn.result is not None:
                    failure.text += "\n\n" + turn.result.describe()
            if turn.result is not None:
                ET.SubElement(case, "system-out").text = turn.result.describe()
        if outcome.error is not None:
            s_err += 1
            case = ET.SubElement(suite_el, "testcase", classname=outcome.scenario.name, name="scenario", time="0")
            ET.SubElement(case, "error", message=outcome.error).text = outcome.error
        count = len(outcome.turns) + (outcome.error is not None)
        suite_el.set("tests", str(count))
        suite_el.set("failures", str(s_fail))
        suite_el.set("errors", str(s_err))
        suite_el.set("time", f"{outcome.seconds:.3f}")
        cases, failures, errors = cases + count, failures + s_fail, errors + s_err
        total_time += outcome.seconds
    root.set("name", suite)
    root.set("tests", str(cases))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(outcomes: list[ScenarioOutcome], path: str | Path) -> None:
    """Write :func:`junit_xml` to ``path``."""
    Path(path).write_text(junit_xml(outcomes), encoding="utf-8")
