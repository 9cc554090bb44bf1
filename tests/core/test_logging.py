"""Logging: no sinks configured on import; session ids on log lines."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys

from loguru import logger

from vocalis.log import configure_logging, level_from_verbosity, session_context


def test_import_does_not_touch_loguru_sinks() -> None:
    code = (
        "from loguru import logger\n"
        "before = len(logger._core.handlers)\n"
        "import vocalis, vocalis.plugin.manager, vocalis.plugin.registry, vocalis.settings\n"
        "vocalis.make_plugin_manager()\n"
        "assert len(logger._core.handlers) == before, 'sinks changed'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_verbosity_steps_down_levels() -> None:
    assert level_from_verbosity("INFO", 0) == "INFO"
    assert level_from_verbosity("info", 1) == "DEBUG"
    assert level_from_verbosity("INFO", 5) == "TRACE"
    assert level_from_verbosity("nonsense", 0) == "INFO"


async def test_session_context_tags_lines_per_task() -> None:
    sink = io.StringIO()
    handler = configure_logging("DEBUG", sink=sink)
    try:

        async def talk(session: str) -> None:
            with session_context(session):
                await asyncio.sleep(0)
                logger.info("hello from {}", session)

        await asyncio.gather(talk("s-one"), talk("s-two"))
        logger.info("outside")
    finally:
        logger.remove(handler)
        logger.add(sys.stderr)
    lines = sink.getvalue().splitlines()
    assert any("[s-one]" in line and "hello from s-one" in line for line in lines)
    assert any("[s-two]" in line and "hello from s-two" in line for line in lines)
    assert not any("[s-one]" in line and "s-two" in line for line in lines)
    outside = next(line for line in lines if "outside" in line)
    assert "[" not in outside.split("|", 2)[2]
