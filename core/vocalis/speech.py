"""Handles for agent utterances (``say`` and ``reply``)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Generator
from typing import Any, Literal

SpeechSource = Literal["say", "reply", "user_turn", "wake_up"]

_ids = itertools.count(1)


class SpeechHandle:
    """One agent utterance: awaitable, interruptible, inspectable.

    ``await handle`` waits until the utterance is done (played out, interrupted
    or discarded). ``handle.interrupt()`` stops it at once.

    Attributes:
        id: Unique within the process, e.g. ``"speech_12"``.
        source: What created it.
        allow_interruptions: Whether the user's speech may cut it off.
        text: What was actually spoken (filled as it plays; truncated when
            interrupted).
    """

    def __init__(self, source: SpeechSource, *, allow_interruptions: bool = True) -> None:
        self.id = f"speech_{next(_ids)}"
        self.source = source
        self.allow_interruptions = allow_interruptions
        self.text = ""
        self._interrupted = False
        self._discarded = False
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._interrupt_event = asyncio.Event()
        self._callbacks: list[Callable[[], object]] = []

    @property
    def interrupted(self) -> bool:
        """Whether the utterance was cut off before it finished."""
        return self._interrupted

    @property
    def discarded(self) -> bool:
        """Whether it never ran (a second ``reply`` while one was running)."""
        return self._discarded

    def done(self) -> bool:
        """Whether it has finished in any way."""
        return self._done.done()

    def interrupt(self, *, force: bool = False) -> bool:
        """Stop the utterance now.

        Args:
            force: Also stop an utterance created with
                ``allow_interruptions=False``.

        Returns:
            True when the call interrupted it; False when it was already done
            or is not interruptible.
        """
        if self.done() or self._interrupted:
            return False
        if not self.allow_interruptions and not force:
            return False
        self._interrupted = True
        self._interrupt_event.set()
        for callback in self._callbacks:
            callback()
        return True

    def add_interrupt_callback(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` synchronously when the handle is interrupted."""
        self._callbacks.append(callback)

    async def wait_for_interrupt(self) -> None:
        """Return when :meth:`interrupt` is called."""
        await self._interrupt_event.wait()

    def _mark_done(self) -> None:
        if not self._done.done():
            self._done.set_result(None)

    def _discard(self) -> None:
        self._discarded = True
        self._mark_done()

    async def wait(self) -> None:
        """Wait until the utterance is done."""
        await asyncio.shield(self._done)

    def __await__(self) -> Generator[Any, None, SpeechHandle]:
        yield from self.wait().__await__()
        return self

    def __repr__(self) -> str:
        state = "interrupted" if self._interrupted else "done" if self.done() else "active"
        return f"<SpeechHandle {self.id} {self.source} {state}>"
