"""In CI a skip is a decision, not an accident: only the listed skips pass.

``tests/allowed_skips.txt`` lists the skips that are expected, one per line as
``<tox env pattern> <node id pattern> | <why>`` (``fnmatch`` patterns; the env
is ``TOX_ENV_NAME``, ``-`` outside tox). When ``CI`` or
``VOCALIS_STRICT_SKIPS`` is set, a run with any other skip fails and names it,
so a missing package or a guard in the wrong order cannot hide a test.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ALLOWED_SKIPS = Path(__file__).with_name("allowed_skips.txt")


def strict_skips() -> bool:
    """Whether unlisted skips fail the run (in CI, or when asked)."""
    return any(
        os.environ.get(name, "").lower() not in ("", "0", "false", "no") for name in ("CI", "VOCALIS_STRICT_SKIPS")
    )


def load_allowed(path: Path = ALLOWED_SKIPS, env: str | None = None) -> list[str]:
    """The node id patterns allowed to skip in tox env ``env``.

    Raises:
        pytest.UsageError: A line is not ``<env> <node id> | <why>``.
    """
    env = env if env is not None else os.environ.get("TOX_ENV_NAME", "-")
    allowed = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where, sep, reason = (part.strip() for part in line.partition("|"))
        fields = where.split()
        if not sep or len(fields) != 2 or not reason:
            raise pytest.UsageError(
                f"{path.name}:{number}: expected '<tox env pattern> <node id pattern> | <why>', got {raw!r}"
            )
        env_pattern, nodeid_pattern = fields
        if fnmatch.fnmatchcase(env, env_pattern):
            allowed.append(nodeid_pattern)
    return allowed


@dataclass(eq=False)  # pluggy keeps plugins in sets: hash by identity
class SkipGate:
    """Collects skipped tests and fails the session on an unlisted one."""

    allowed: list[str]
    unexpected: list[tuple[str, str]] = field(default_factory=list)

    def is_allowed(self, nodeid: str) -> bool:
        return any(fnmatch.fnmatchcase(nodeid, pattern) for pattern in self.allowed)

    def check(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        if not report.skipped or hasattr(report, "wasxfail") or self.is_allowed(report.nodeid):
            return
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        self.unexpected.append((report.nodeid, reason))

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.check(report)

    @pytest.hookimpl
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # A module-level importorskip skips the whole module at collection.
        self.check(report)

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.unexpected:
            return
        terminalreporter.section("skips not in tests/allowed_skips.txt", red=True)
        for nodeid, reason in self.unexpected:
            terminalreporter.line(f"UNEXPECTED SKIP {nodeid}: {reason}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        passing = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
        if self.unexpected and session.exitstatus in passing:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def register(config: pytest.Config) -> None:
    """Install the gate when skips are strict."""
    if strict_skips():
        config.pluginmanager.register(SkipGate(load_allowed()), "vocalis-skip-gate")
