"""Shared fixtures: a clean environment for settings and plugin discovery."""

from __future__ import annotations

import os

import pytest
import skip_gate

# Every test fails if it held an event loop longer than 0.5 s in one callback.
# pytester runs the conformance suites and the skip gate against broken cases.
pytest_plugins = ["vocalis.testing.pytest_plugin", "pytester"]


def pytest_configure(config: pytest.Config) -> None:
    skip_gate.register(config)


@pytest.fixture(autouse=True)
def _clean_vocalis_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No VOCALIS_* variable or stray .env leaks into a test."""
    for key in list(os.environ):
        if key.startswith("VOCALIS_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
