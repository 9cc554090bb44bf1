"""pytest plugin: fail every test during which an event loop was blocked.

Enable it in a ``conftest.py`` at the top of your tests::

    pytest_plugins = ["vocalis.testing.pytest_plugin"]

(or run ``pytest -p vocalis.testing.pytest_plugin``). From the start of a
test's setup to the end of its teardown, a :class:`~vocalis.testing.LoopWatchdog`
times every callback of every event loop (pytest-asyncio's, ``run_virtual``'s
virtual-time loops, loops in other threads); a callback longer than the
threshold (0.5 s; ``--loop-block-threshold``, 0 turns the check off) fails
the test at teardown with the callback's name and where it was stuck.

A test that must block on purpose says so, with a reason::

    @pytest.mark.loop_block_ok(2.0, reason="loads the model inline, as the API allows")
    def test_...

``loop_block_ok()`` without seconds skips the check for that test.

The plugin also enables Vocalis' logs (disabled on import, as a library's
should be: see :mod:`vocalis.log`), so tests that add a loguru sink see the
library's lines; it adds no sink itself.
"""

from __future__ import annotations

import pytest

from vocalis.log import enable_logging
from vocalis.testing.watchdog import LoopWatchdog

DEFAULT_THRESHOLD = 0.5
_WATCHDOG = pytest.StashKey[LoopWatchdog]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vocalis", "Vocalis test kit")
    group.addoption(
        "--loop-block-threshold",
        type=float,
        default=None,
        metavar="SECONDS",
        help=f"Fail a test whose event loop ran one callback longer than this (default {DEFAULT_THRESHOLD}; 0: off).",
    )


def pytest_configure(config: pytest.Config) -> None:
    enable_logging()
    config.addinivalue_line(
        "markers",
        "loop_block_ok(seconds=None, *, reason=''): this test may hold an event loop up to `seconds` "
        "in one callback (no seconds: not checked)",
    )


def threshold_for(item: pytest.Item) -> float | None:
    """The longest callback ``item`` may run, or None when it is not checked."""
    option = item.config.getoption("--loop-block-threshold", default=None)
    threshold = DEFAULT_THRESHOLD if option is None else float(option)
    if threshold <= 0:
        return None
    marker = item.get_closest_marker("loop_block_ok")
    if marker is not None:
        seconds = marker.args[0] if marker.args else marker.kwargs.get("seconds")
        if seconds is None:
            return None
        threshold = max(threshold, float(seconds))
    return threshold


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item):  # type: ignore[no-untyped-def]
    threshold = threshold_for(item)
    if threshold is not None:
        watchdog = LoopWatchdog(threshold)
        item.stash[_WATCHDOG] = watchdog
        watchdog.start()
    return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
    # Outermost wrapper: the check comes after every fixture's teardown,
    # pytest-asyncio closing its loop included.
    try:
        result = yield
    finally:
        watchdog = item.stash.get(_WATCHDOG, None)
        if watchdog is not None:
            watchdog.stop()
            del item.stash[_WATCHDOG]
    if watchdog is not None and watchdog.blocked:
        pytest.fail(
            watchdog.report() + "\n(If this test must block, mark it @pytest.mark.loop_block_ok(seconds, reason=...).)",
            pytrace=False,
        )
    return result
