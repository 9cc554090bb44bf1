"""Typed session events: names and payloads that mypy checks, plain dicts at run time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from loguru import logger

import vocalis
from vocalis.event_types import EVENT_PAYLOADS
from vocalis.events import SessionEventEmitter
from vocalis.states import FORWARDED_EVENTS, SESSION_EVENTS

DOCS = Path(__file__).parents[2] / "docs" / "sessions.md"


def test_every_session_event_has_a_payload_type() -> None:
    assert set(EVENT_PAYLOADS) == SESSION_EVENTS
    assert FORWARDED_EVENTS <= SESSION_EVENTS
    for payload in EVENT_PAYLOADS.values():
        assert getattr(vocalis, payload.__name__) is payload  # exported from `vocalis`


def test_the_documented_payloads_are_the_typed_ones() -> None:
    """docs/sessions.md's event table names each payload's keys, as the TypedDicts do."""
    rows = re.findall(r"^\| `(\w+)` \| (.*) \|$", DOCS.read_text(), flags=re.MULTILINE)
    documented = {name: re.findall(r"`(\w+)`", text) for name, text in rows if name in SESSION_EVENTS}
    assert set(documented) == SESSION_EVENTS
    for name, payload in EVENT_PAYLOADS.items():
        keys = set(payload.__annotations__)
        assert keys <= set(documented[name]), f"{name}: {keys} not all documented in {documented[name]}"


def test_payloads_are_plain_dicts_and_unknown_names_still_warn() -> None:
    emitter = SessionEventEmitter()
    got: list[object] = []
    emitter.on("user_turn", got.append)
    emitter.emit("user_turn", {"text": "hello"})
    assert got == [{"text": "hello"}] and type(got[0]) is dict
    warnings: list[str] = []
    sink = logger.add(lambda message: warnings.append(str(message)), level="WARNING")
    try:
        emitter.on("user_trun", got.append)  # type: ignore[call-overload]
    finally:
        logger.remove(sink)
    assert any("'user_trun'" in w and "misspelled" in w for w in warnings)


def _mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy.api", reason="mypy is not installed")
    snippet = tmp_path / "snippet.py"
    snippet.write_text(textwrap.dedent(source))
    env = dict(os.environ)
    package_root = Path(vocalis.__file__).resolve().parents[1]
    if package_root.name not in ("site-packages", "dist-packages"):  # a source checkout
        env["MYPYPATH"] = str(package_root)
    command = [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--config-file", os.devnull]
    command += ["--cache-dir", str(tmp_path / "cache"), str(snippet)]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_mypy_accepts_correct_events(tmp_path: Path) -> None:
    result = _mypy(
        tmp_path,
        """
        from vocalis import AgentTurnEvent
        from vocalis.events import SessionEventEmitter

        session = SessionEventEmitter()
        session.emit("user_turn", {"text": "hello"})
        session.on("on_speech_in", lambda event: print(event["text"], event["is_final"]))


        @session.on("agent_turn")
        async def heard(event: AgentTurnEvent) -> None:
            print(event["text"], event["interrupted"])
        """,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_rejects_a_misspelt_event_or_a_wrong_payload_key(tmp_path: Path) -> None:
    result = _mypy(
        tmp_path,
        """
        from vocalis.events import SessionEventEmitter

        session = SessionEventEmitter()
        session.on("user_trun", print)
        session.emit("user_turn", {"txt": "hello"})
        session.on("user_turn", lambda event: event["speech_id"])
        """,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert result.returncode == 1, result.stdout + result.stderr
    assert [line.split(":")[1] for line in errors] == ["5", "6", "7"], result.stdout
    assert all('"on"' in line or '"emit"' in line for line in errors), result.stdout
