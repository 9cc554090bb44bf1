"""The first hour on the command line: single-file agents, the README's
minimal agent as printed, and `serve`'s port (its default, and a port in use)."""

from __future__ import annotations

import errno
import json
import re
import socket
import sys
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest
from click.testing import CliRunner
from test_talk import FAKES_PLUGIN

from vocalis.cli.main import cli
from vocalis.cli.run_cmd import load_agent_source
from vocalis.testing import FakeLLM, FakeResponse, FakeSTT, FakeTTS, FakeVAD, run_virtual, tone
from vocalis.transports.file import write_wav

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def fakes(dists: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    dists.install("vocalis-fakes", FAKES_PLUGIN)
    monkeypatch.setenv("VOCALIS_PLUGINS", "fakes")
    monkeypatch.setenv("VOCALIS_STT_FAKE_TRANSCRIPTS", json.dumps(["what is the weather in paris"]))
    monkeypatch.setenv("VOCALIS_LLM_FAKE_RESPONSES", json.dumps(["It is sunny in Paris."]))


def readme_minimal_agent() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## A minimal agent", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.+?)\n```", section, flags=re.S)
    return code


def test_the_readme_prints_examples_minimal_agent_exactly() -> None:
    assert readme_minimal_agent() + "\n" == (EXAMPLES / "minimal_agent.py").read_text()


@pytest.mark.usefixtures("fakes")
def test_talk_runs_a_bare_agent_file() -> None:
    result = CliRunner().invoke(cli, ["talk", str(EXAMPLES / "minimal_agent.py"), "--text", "weather in paris?"])
    assert result.exit_code == 0, result.output
    assert "agent: Hi! Ask me about the weather." in result.output
    assert "you:   weather in paris?" in result.output
    assert "agent: It is sunny in Paris." in result.output


@pytest.mark.usefixtures("fakes")
def test_the_minimal_agent_file_runs_as_a_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The question comes after the greeting has played (no barge-in here).
    rate = 16_000
    wav = tmp_path / "question.wav"
    write_wav(wav, np.concatenate([np.zeros(4 * rate, dtype=np.int16), tone(1.0, rate).to_numpy()]), rate)
    namespace: dict[str, Any] = {"__name__": "minimal_agent"}
    exec(compile((EXAMPLES / "minimal_agent.py").read_text(), "minimal_agent.py", "exec"), namespace)
    run_virtual(namespace["main"](str(wav)), max_virtual_time=None)
    out = capsys.readouterr().out
    assert "agent: Hi! Ask me about the weather." in out
    assert "you:   what is the weather in paris" in out
    assert "agent: It is sunny in Paris." in out


def write(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(source)
    return str(path)


AGENT_CLASS = (
    "from vocalis import Agent\n\nclass agent(Agent):\n    def __init__(self):\n        super().__init__('x')\n"
)


def test_agent_file_conventions(tmp_path: Path) -> None:
    made = load_agent_source(write(tmp_path, "a.py", AGENT_CLASS))
    assert made.make_pipeline is None and made.agent().instructions == "x"
    both = write(
        tmp_path,
        "b.py",
        "from vocalis import Agent, CascadingPipeline\n"
        "def make_agent():\n    return Agent('b')\n"
        "agent = None  # make_agent comes first\n"
        "def make_pipeline():\n    return 'not a pipeline'\n",
    )
    source = load_agent_source(both)
    assert source.agent().instructions == "b" and source.make_pipeline is not None
    # file.py:factory also finds the module's make_pipeline
    assert load_agent_source(f"{both}:make_agent").make_pipeline is not None
    with pytest.raises(click.BadParameter, match="defines no agent: add `def make_agent"):
        load_agent_source(write(tmp_path, "c.py", "x = 1\n"))
    with pytest.raises(click.BadParameter, match="no such file"):
        load_agent_source(str(tmp_path / "missing.py"))


@pytest.mark.usefixtures("fakes")
def test_talk_reports_agent_file_mistakes(tmp_path: Path) -> None:
    runner = CliRunner()
    empty = write(tmp_path, "empty.py", "x = 1\n")
    result = runner.invoke(cli, ["talk", empty, "--text", "hi"])
    assert result.exit_code == 2 and "defines no agent" in result.output
    result = runner.invoke(cli, ["talk", empty, "--agent", "x:y", "--text", "hi"])
    assert result.exit_code == 2 and "either as AGENT.py or with --agent" in result.output
    bad = write(tmp_path, "bad.py", AGENT_CLASS + "def make_pipeline():\n    return 42\n")
    result = runner.invoke(cli, ["talk", bad, "--text", "hi"])
    assert result.exit_code == 1 and "make_pipeline() must return a CascadingPipeline" in result.output
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("fakes")
def test_talk_uses_the_file_s_pipeline(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "own.py",
        AGENT_CLASS + "from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD\n"
        "from vocalis import CascadingPipeline\n"
        "def make_pipeline():\n"
        "    return CascadingPipeline(stt=FakeSTT([]), llm=FakeLLM(['From my own pipeline.']), "
        "tts=FakeTTS(), vad=FakeVAD(), turn_detector=None)\n",
    )
    result = CliRunner().invoke(cli, ["talk", "--agent", path, "--text", "hi"])
    assert result.exit_code == 0, result.output
    assert "agent: From my own pipeline." in result.output


def test_the_handoff_example_hands_over() -> None:
    from vocalis import CascadingPipeline
    from vocalis.testing import Conversation

    namespace: dict[str, Any] = {"__name__": "handoff_agent"}
    exec(compile((EXAMPLES / "handoff_agent.py").read_text(), "handoff_agent.py", "exec"), namespace)
    llm = FakeLLM([FakeResponse(tool_calls=[("transfer_to_billing", "{}")]), "", "Which invoice?"])
    pipe = CascadingPipeline(stt=FakeSTT([]), llm=llm, tts=FakeTTS(), vad=FakeVAD(), turn_detector=None)

    async def main() -> Conversation:
        async with Conversation(namespace["make_agent"](), pipe) as conv:
            await conv.session.send_text("a question about my invoice")
            await conv.wait_for(lambda: conv.named("agent_handoff") != [])
            await conv.wait_for(lambda: not conv.session.busy)
        return conv

    conv = run_virtual(main())
    assert conv.named("agent_handoff") == [{"from": "Receptionist", "to": "BillingAgent"}]
    assert "Billing here. Which invoice is it about?" in conv.agent_turns()


def test_serve_defaults_to_a_port_llama_cpp_does_not_use() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert re.search(r"--port .+?\[default:\s+8765;", result.output, flags=re.S)
    assert "8080" not in (ROOT / "README.md").read_text().split("## Talk to it from a browser", 1)[1].split("\n## ")[0]


@pytest.mark.usefixtures("fakes")
def test_a_port_in_use_is_one_line_before_any_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    import vocalis.plugin.manager as manager

    def no_models(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("plugins (and models) loaded before the port check")

    monkeypatch.setattr(manager, "make_plugin_manager", no_models)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", "--port", str(port)])
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"Error: port {port} on 127.0.0.1 is in use: stop what listens there, or pick another with --port"
    )


@pytest.mark.usefixtures("fakes")
def test_a_port_taken_after_the_check_is_one_line_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import vocalis.cli.serve_cmd as serve_cmd
    import vocalis.serve.http as http

    class Page:
        name = "page"

    async def taken(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EADDRINUSE, "Address already in use")

    monkeypatch.setattr(serve_cmd, "serving_transports", lambda registry: [Page])
    monkeypatch.setattr(http, "serve", taken)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(cli, ["serve", "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert (
        result.output.strip()
        == f"Error: port {port} on 127.0.0.1 is in use: stop what listens there, or pick another with --port"
    )
    assert sys.exc_info() == (None, None, None)
