"""The example plugin of docs/writing-plugins.md: installed from its pyproject,
run through the conformance suites and through a session, and quoted
faithfully by the guide."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import forget_modules

from vocalis import Agent, CascadingPipeline
from vocalis.plugin.manager import make_plugin_manager
from vocalis.testing import Conversation, FakeLLM, FakeVAD, run_virtual

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "plugin"
GUIDE = ROOT / "docs" / "writing-plugins.md"

# The plugin's own test module imports `vocalis_example` when it is loaded
# (at collection), so its sources go on sys.path for this process only.
if str(EXAMPLE / "src") not in sys.path:
    sys.path.insert(0, str(EXAMPLE / "src"))


def _load_plugin_tests() -> object:
    spec = importlib.util.spec_from_file_location(
        "vocalis_example_own_tests", EXAMPLE / "tests" / "test_conformance.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The plugin's own conformance tests, collected here so the core env runs them.
_own = _load_plugin_tests()
TestExampleSTT = _own.TestExampleSTT  # type: ignore[attr-defined]
TestExampleTTS = _own.TestExampleTTS  # type: ignore[attr-defined]


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The example installed as pip would: its package next to a dist-info
    whose entry points are the ones its pyproject.toml declares."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    site = tmp_path / "site"
    shutil.copytree(EXAMPLE / "src" / "vocalis_example", site / "vocalis_example")
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    points = "".join(f"{name} = {target}\n" for name, target in project["entry-points"]["vocalis"].items())
    (info / "entry_points.txt").write_text(f"[vocalis]\n{points}")
    forget_modules("vocalis_example")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("VOCALIS_PLUGINS", "example")
    yield site
    forget_modules("vocalis_example")


def test_installed_plugin_registers_both_providers_with_aliases(installed: Path) -> None:
    pm = make_plugin_manager()
    record = pm.records["example"]
    assert record.status == "ok", record.errors
    assert (record.origin.distribution, record.origin.version) == ("vocalis-example", "0.1.0")
    entries = {(e.kind.value, e.name): e for e in record.providers}
    assert set(entries) == {("stt", "example"), ("tts", "example")}
    assert all(e.aliases == ("tones",) for e in entries.values())
    assert entries["stt", "example"].cls.__module__ == "vocalis_example.stt"
    assert str(installed) in sys.modules["vocalis_example"].__file__


def test_settings_come_from_the_provider_prefixes(installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_STT_EXAMPLE_WORD_GAP_SECONDS", "0.12")
    monkeypatch.setenv("VOCALIS_TTS_EXAMPLE_VOLUME", "0.5")
    registry = make_plugin_manager().registry
    assert registry.create("stt", "tones").settings.word_gap_seconds == 0.12  # type: ignore[attr-defined]
    assert registry.create("tts", "example").settings.volume == 0.5  # type: ignore[attr-defined]


def _round_trip(user_text: str, pipeline: CascadingPipeline) -> tuple[list[str], str]:
    """The user's line spoken by the example TTS into a session; the agent's
    reply audio read back by the example STT."""

    async def main() -> tuple[list[str], str]:
        tts, stt = pipeline.tts, pipeline.stt
        spoken = [frame async for frame in tts.synthesize(user_text)]
        async with Conversation(Agent("Be brief."), pipeline, sample_rate=tts.sample_rate) as conv:
            await conv.silence(0.3)
            for frame in spoken:  # at the pace of a microphone, in virtual time
                conv.transport.push(frame)
                await asyncio.sleep(frame.duration)
            await conv.wait_for_agent_turn(timeout=30)
            heard = [played.frame for played in conv.transport.audio_output.frames]
            return conv.user_turns(), (await stt.recognize(heard)).text

    return run_virtual(main())


def test_round_trip_through_a_session_selected_by_environment(installed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Selected as a user would: by name in the environment, and by alias.
    monkeypatch.setenv("VOCALIS_STT", "example")
    pipeline = CascadingPipeline(
        llm=FakeLLM(["Done. The kitchen lights are on."]),
        tts="tones",
        vad=FakeVAD(),
        turn_detector=None,
        registry=make_plugin_manager().registry,
    )
    assert (pipeline.stt.label, pipeline.tts.label) == ("stt:example", "tts:example")
    user_turns, heard = _round_trip("Turn on the kitchen lights, please.", pipeline)
    assert user_turns == ["turn on the kitchen lights please"]
    assert heard == "done the kitchen lights are on"


def test_guide_quotes_the_example_files_exactly() -> None:
    """Every code block the guide labels with a file of examples/plugin is that file."""
    guide = GUIDE.read_text()
    quoted = re.findall(r"<!-- file: (examples/plugin/[^ ]+) -->\n```\w*\n(.*?)```", guide, re.DOTALL)
    names = {name for name, _ in quoted}
    assert names >= {
        "examples/plugin/pyproject.toml",
        "examples/plugin/src/vocalis_example/plugin.py",
        "examples/plugin/src/vocalis_example/tts.py",
        "examples/plugin/src/vocalis_example/stt.py",
        "examples/plugin/tests/test_conformance.py",
    }
    for name, code in quoted:
        assert code == (ROOT / name).read_text(), f"the guide's copy of {name} differs from the file"
