"""Logging helpers on loguru.

Vocalis is quiet as a library: following loguru's advice for libraries,
``import vocalis`` disables the ``vocalis`` logger (and each plugin disables
its own ``vocalis_<name>`` package), so nothing is printed until the
application asks for it. The ``vocalis`` CLI calls :func:`configure_logging`,
which enables them all and adds one sink; an application that sets up loguru
itself calls :func:`enable_logging` (no sinks touched). The library never adds
or removes sinks on import. Inside a session every log line carries
``extra["session_id"]`` through :func:`session_context`.
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from loguru import logger

_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


def _format(record: Any) -> str:
    session = record["extra"].get("session_id")
    where = f"[{session}] " if session else ""
    return (
        "<green>{time:HH:mm:ss.SSS}</green> | <level>{level: <7}</level> | "
        f"{where}<cyan>{{name}}</cyan>: <level>{{message}}</level>\n{{exception}}"
    )


def level_from_verbosity(level: str, verbose: int) -> str:
    """Lower ``level`` by one step per ``-v`` (INFO → DEBUG → TRACE)."""
    level = level.upper()
    index = _LEVELS.index(level) if level in _LEVELS else _LEVELS.index("INFO")
    return _LEVELS[max(0, index - verbose)]


LIBRARY = "vocalis"
# Whether the application enabled Vocalis' logs: process-wide, as loguru's own
# enable/disable rules and sinks are.
_state = {"enabled": False}
"""The core package's logger name (disabled on import, see the module docstring)."""


def plugin_packages() -> list[str]:
    """Top-level packages of the installed plugins (from their ``vocalis`` entry points)."""
    names = set()
    for ep in importlib.metadata.entry_points(group=LIBRARY):
        names.add(ep.value.split(":", 1)[0].split(".", 1)[0])
    return sorted(names)


def enable_logging() -> list[str]:
    """Let Vocalis and its installed plugins log through loguru's sinks.

    Call it when the application configures loguru itself; it adds no sink.

    Returns:
        The package names enabled: ``vocalis`` and each plugin's package.
    """
    _state["enabled"] = True
    names = [LIBRARY, *(name for name in plugin_packages() if name != LIBRARY)]
    for name in names:
        logger.enable(name)
    return names


def disable_logging() -> None:
    """Silence Vocalis and its installed plugins again (the state after import)."""
    _state["enabled"] = False
    for name in [LIBRARY, *plugin_packages()]:
        logger.disable(name)


def quiet_library(package: str) -> None:
    """Keep ``package``'s log off unless the application enabled Vocalis' logging.

    A plugin calls it in its ``__init__`` (``quiet_library(__name__)``). A
    plugin imported after :func:`enable_logging` stays enabled: loguru applies
    its enable and disable calls in order, so an unconditional disable there
    would silence a plugin the application had already asked to hear.
    """
    if not _state["enabled"]:
        logger.disable(package)


def configure_logging(level: str = "INFO", *, sink: TextIO | None = None) -> int:
    """Replace loguru's sinks with one human-readable sink, and enable Vocalis' logs.

    The ``vocalis`` CLI calls it; applications may too (see :func:`enable_logging`
    for keeping their own sinks).

    Args:
        level: Minimum level to show.
        sink: Where to write; standard error when omitted.

    Returns:
        The loguru handler id.
    """
    logger.remove()
    enable_logging()
    return logger.add(sink or sys.stderr, level=level.upper(), format=_format, colorize=None, diagnose=False)


@contextmanager
def session_context(session_id: str) -> Iterator[None]:
    """Tag every log line written inside the block with ``session_id``.

    Uses loguru's ``contextualize``, which is context-variable based, so
    tasks started inside the block keep the tag and other sessions are not
    affected.
    """
    with logger.contextualize(session_id=session_id):
        yield
