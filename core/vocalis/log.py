"""Logging helpers on loguru.

The library never adds or removes sinks on import; applications (and the
``vocalis`` CLI) call :func:`configure_logging`. Inside a session every log
line carries ``extra["session_id"]`` through :func:`session_context`.
"""

from __future__ import annotations

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


def configure_logging(level: str = "INFO", *, sink: TextIO | None = None) -> int:
    """Replace loguru's sinks with one human-readable sink.

    Args:
        level: Minimum level to show.
        sink: Where to write; standard error when omitted.

    Returns:
        The loguru handler id.
    """
    logger.remove()
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
