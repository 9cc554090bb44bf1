"""The CI skip gate fails a run on any skip that is not on the allow-list."""

from __future__ import annotations

from pathlib import Path

import pytest
import skip_gate

TESTS = """
import pytest

def test_runs():
    assert True

def test_allowed():
    pytest.skip("decided")

def test_accidental():
    pytest.importorskip("a_module_nobody_installed")
"""


def write_conftest(pytester: pytest.Pytester, allowed: list[str]) -> None:
    pytester.makeconftest(
        f"""
import skip_gate

def pytest_configure(config):
    config.pluginmanager.register(skip_gate.SkipGate({allowed!r}), "gate")
"""
    )


def test_an_unlisted_skip_fails_the_run_and_is_named(pytester: pytest.Pytester) -> None:
    write_conftest(pytester, ["*::test_allowed"])
    pytester.makepyfile(test_mod=TESTS)
    result = pytester.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*UNEXPECTED SKIP test_mod.py::test_accidental: *a_module_nobody_installed*"])
    assert "UNEXPECTED SKIP test_mod.py::test_allowed" not in result.stdout.str()


def test_listed_skips_pass(pytester: pytest.Pytester) -> None:
    write_conftest(pytester, ["*::test_allowed", "*::test_accidental"])
    pytester.makepyfile(test_mod=TESTS)
    result = pytester.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, skipped=2)


def test_a_module_skipped_at_collection_counts(pytester: pytest.Pytester) -> None:
    write_conftest(pytester, [])
    pytester.makepyfile(test_whole="import pytest\npytest.importorskip('nope_not_here')\ndef test_x(): pass\n")
    result = pytester.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*UNEXPECTED SKIP test_whole.py: *nope_not_here*"])


def test_allow_list_lines_are_per_env_and_need_a_reason(tmp_path: Path) -> None:
    listing = tmp_path / "allowed.txt"
    listing.write_text("# comment\nplugin-* tests/a.py* | runs in all\nall tests/b.py::t | why\n")
    assert skip_gate.load_allowed(listing, env="plugin-x") == ["tests/a.py*"]
    assert skip_gate.load_allowed(listing, env="all") == ["tests/b.py::t"]
    listing.write_text("plugin-* tests/a.py*\n")
    with pytest.raises(pytest.UsageError, match="allowed.txt:1"):
        skip_gate.load_allowed(listing, env="all")


def test_the_repository_allow_list_parses() -> None:
    for env in ("core", "plugin-openai", "all", "-"):
        skip_gate.load_allowed(env=env)


def test_strict_in_ci_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("VOCALIS_STRICT_SKIPS", raising=False)
    assert not skip_gate.strict_skips()
    monkeypatch.setenv("CI", "true")
    assert skip_gate.strict_skips()
    monkeypatch.setenv("CI", "false")
    assert not skip_gate.strict_skips()


def test_registered_from_pytest_configure_in_ci(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # The way tests/conftest.py installs it (CI=true); pluggy must accept the gate.
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("TOX_ENV_NAME", "core")
    pytester.makeconftest("import skip_gate\n\ndef pytest_configure(config):\n    skip_gate.register(config)\n")
    pytester.makepyfile(test_mod=TESTS)
    result = pytester.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*UNEXPECTED SKIP test_mod.py::test_allowed*", "*UNEXPECTED SKIP test_mod.py::test_accidental*"]
    )
