"""`vocalis eval` on the shipped assistant scenarios with the offline stack, spoken and typed.

The whole stack of a call, nothing scripted: the Piper voice speaks each
typed line (and the recorded WAV of assistant_spoken.yaml is played) into
the session, Silero, Whisper and Smart Turn take the turn, SmolLM2 answers,
Piper speaks, and Whisper transcribes what was played back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

for _plugin in ("vocalis_silero", "vocalis_whisper", "vocalis_llamacpp", "vocalis_smartturn"):
    pytest.importorskip(_plugin, reason="needs the offline stack (tox env `all`)")

from test_piper_roundtrip import words

# Real models for five turns in a subprocess: far beyond 120 s on a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SCENARIOS = Path(__file__).parents[3] / "examples" / "scenarios"


def test_the_assistant_scenarios_pass_in_audio_mode(tmp_path: Path) -> None:
    junit = tmp_path / "eval.xml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vocalis.cli.main",
            "eval",
            str(SCENARIOS / "assistant.yaml"),
            str(SCENARIOS / "assistant_spoken.yaml"),
            "--mode",
            "audio",
            "--junit",
            str(junit),
        ],
        capture_output=True,
        text=True,
        timeout=840,
        env={**os.environ, "VOCALIS_LOG_LEVEL": "WARNING"},
    )
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    assert "3 passed, 0 failed (3 scenarios)" in output
    recognised = [line.split(":", 1)[1] for line in output.splitlines() if line.strip().startswith("recognised:")]
    heard = [line.split(":", 1)[1] for line in output.splitlines() if line.strip().startswith("heard:")]
    assert len(recognised) == len(heard) == 5
    # The session recognised what the voice said (words may differ; most must be there),
    # and the recording: "What time is it in Tokyo right now?"
    for said, got in zip(
        ["Hello! Who are you?", "What is 17 times 23?", "Thank you, goodbye.", "time Tokyo"], recognised, strict=False
    ):
        wanted = words(said)
        assert sum(word in words(got) for word in wanted) >= len(wanted) / 2, (said, got)
    # Every reply was heard back as words.
    assert all(len(words(text)) >= 2 for text in heard), heard
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert len(cases) == 5 and not ET.parse(junit).getroot().findall(".//failure")


def test_the_assistant_scenarios_pass_in_text_mode_on_the_offline_llm() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vocalis.cli.main", "eval", str(SCENARIOS / "assistant.yaml")],
        capture_output=True,
        text=True,
        timeout=840,
        env={**os.environ, "VOCALIS_LOG_LEVEL": "WARNING"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed, 0 failed (2 scenarios)" in result.stdout
    assert "heard:" not in result.stdout  # typed: nothing is transcribed
