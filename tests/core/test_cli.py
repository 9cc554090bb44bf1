"""The ``vocalis`` command line: plugin listing as table and JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import build_wheel, provider_plugin_source

from vocalis.cli.main import cli


def run_cli(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_plugins_json_lists_plugins_and_errors(dists) -> None:
    dists.provider_plugin("vocalis-acme", "stt", "acme", version="0.3.0")
    dists.install("vocalis-broken", "import not_a_real_module_xyz\n")
    rows = json.loads(run_cli("plugins", "--json"))
    keys = {"kind", "name", "aliases", "plugin", "distribution", "version", "status", "error"}
    assert all(set(row) == keys for row in rows)
    acme = next(r for r in rows if r["plugin"] == "acme")
    # The test plugin's STT overrides no method, so it is listed as incomplete.
    assert acme == {
        "kind": "stt",
        "name": "acme",
        "aliases": [],
        "plugin": "acme",
        "distribution": "vocalis-acme",
        "version": "0.3.0",
        "status": "incomplete",
        "error": "AcmeProvider implements neither recognize() nor stream(): it would fail at run time",
    }
    broken = next(r for r in rows if r["plugin"] == "broken")
    assert broken["status"] == "error"
    assert "not_a_real_module_xyz" in broken["error"]
    assert broken["distribution"] == "vocalis-broken"


def test_plugins_table(dists) -> None:
    dists.provider_plugin("vocalis-acme", "tts", "acme-voice")
    dists.install("vocalis-broken", "raise ImportError('missing libfoo')\n")
    out = run_cli("plugins")
    header, *lines = out.splitlines()
    assert header.split() == ["KIND", "NAME", "ALIASES", "PLUGIN", "DISTRIBUTION", "VERSION", "STATUS"]
    assert any(line.split()[:4] == ["tts", "acme-voice", "-", "acme"] and "incomplete" in line for line in lines)
    assert any("broken" in line and "error" in line and "missing libfoo" in line for line in lines)


def test_log_level_flags() -> None:
    assert run_cli("--log-level", "warning", "plugins")
    assert run_cli("-vv", "plugins")
    assert "vocalis" in run_cli("--version")


@pytest.mark.slow
def test_pip_installed_third_party_plugin_is_listed(tmp_path: Path) -> None:
    """A wheel installed by pip from outside the repo shows up in a real CLI run."""
    wheel = build_wheel(
        tmp_path,
        dist="vocalis-thirdparty",
        version="4.5.6",
        package="vocalis_thirdparty",
        source=provider_plugin_source("vad", "thirdparty-vad"),
        ep_name="thirdparty",
    )
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("VOCALIS_DISABLE_PLUGIN_AUTOLOAD", None)
    out = subprocess.run(
        [sys.executable, "-m", "vocalis.cli.main", "plugins", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    rows = json.loads(out)
    row = next(r for r in rows if r["plugin"] == "thirdparty")
    assert (row["kind"], row["name"], row["distribution"], row["version"], row["status"]) == (
        "vad",
        "thirdparty-vad",
        "vocalis-thirdparty",
        "4.5.6",
        "incomplete",  # the test plugin's VAD overrides no method
    )


def test_settings_that_name_missing_things_are_warned_about(monkeypatch) -> None:
    monkeypatch.setenv("VOCALIS_PLUGINS", "nope")
    monkeypatch.setenv("VOCALIS_STT", "whisper")
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0
    assert "VOCALIS_PLUGINS names 'nope'" in result.stderr
    assert "VOCALIS_STT='whisper' but no such stt provider" in result.stderr


def test_bad_log_level_is_refused() -> None:
    result = CliRunner().invoke(cli, ["--log-level", "bogus", "plugins"])
    assert result.exit_code == 2


def test_load_object_from_a_file_path(tmp_path, monkeypatch) -> None:
    from vocalis.cli.run_cmd import load_object

    (tmp_path / "my_agent.py").write_text("def make():\n    return 42\n")
    monkeypatch.chdir(tmp_path)
    assert load_object("my_agent.py:make")() == 42
    assert load_object(f"{tmp_path / 'my_agent.py'}:make")() == 42
    import click
    import pytest

    with pytest.raises(click.BadParameter, match="cannot import"):
        load_object("missing.py:make")
