"""Getting a pipeline's providers ready: prewarmed together, the slow ones named.

Every provider's ``prewarm`` runs at once. Nothing is cut short: loading a
local model can rightly take a minute on a slow machine (a fallback bounds
its own members, see :meth:`vocalis.providers.fallback_core.FallbackChain.prewarm`).
But a session that takes long to start says which provider it waits for:
a warning after ``slow_after`` seconds, repeated at growing intervals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from loguru import logger

from vocalis.providers.base import Provider

SLOW_AFTER = 6.0
"""Seconds of prewarming after which the providers still loading are named in a warning
(just past a fallback's own default limit, 5 s: it names its slow members itself)."""


async def prewarm_all(
    providers: Sequence[Provider],
    report: Callable[[Provider, BaseException], None],
    *,
    slow_after: float = SLOW_AFTER,
) -> None:
    """Prewarm ``providers`` concurrently; a failure goes to ``report``, a slow one is logged."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    tasks = {loop.create_task(p.prewarm()): p for p in providers}
    pending = set(tasks)
    wait = slow_after
    try:
        while pending:
            _, pending = await asyncio.wait(pending, timeout=wait)
            if pending:
                slow = ", ".join(tasks[t].label for t in tasks if t in pending)
                logger.warning("still waiting for {} to get ready ({:.0f} s so far)", slow, loop.time() - started)
                wait *= 2
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    for task, provider in tasks.items():
        error = task.exception()
        if error is not None:
            report(provider, error)
    took = loop.time() - started
    if took >= slow_after:
        logger.info("providers ready in {:.1f} s", took)
    else:
        logger.debug("providers ready in {:.2f} s", took)
