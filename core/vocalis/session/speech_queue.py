"""The session's speech queue: agent utterances run one at a time, in order.

``say``, ``reply``, a committed user turn and a realtime model's response
each queue an utterance; the scheduler task runs them in order, measures
reports each one's start and end to the session's observers (see
:mod:`vocalis.stages`) and settles the states after it. A user turn goes to the front, and a user turn
still waiting for its reply joins the new one, so nothing the user said is
dropped.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from loguru import logger

from vocalis.log import session_context
from vocalis.session.limits import trim_chat_context
from vocalis.speech import SpeechHandle, SpeechSource
from vocalis.stages import UserTurnTiming, UtteranceEnded, UtteranceStarted

if TYPE_CHECKING:
    from vocalis.session.core import SessionCore
    from vocalis.session.state_machine import SessionStates
    from vocalis.session.wake_up import WakeUpTimer


@dataclasses.dataclass(eq=False, slots=True)
class QueuedSpeech:
    """An utterance waiting to run, or running.

    Attributes:
        handle: Its public handle.
        run: Plays it (the pipeline's ``speak`` or ``generate_reply``).
        user_text: The user's words it answers, for a user turn.
        user_timing: What the turn controller measured of that user turn.
    """

    handle: SpeechHandle
    run: Callable[[], Awaitable[None]]
    user_text: str | None = None
    user_timing: UserTurnTiming | None = None


class SpeechQueue:
    """Queues a session's utterances and runs them one at a time.

    Args:
        session: The session whose utterances run.
        states: The session's states, settled after each utterance.
        wake_up: The wake-up timer, paused while the agent speaks.
        after_each: Awaited after each utterance (a pending handoff).
    """

    def __init__(
        self,
        session: SessionCore,
        states: SessionStates,
        wake_up: WakeUpTimer,
        after_each: Callable[[], Awaitable[None]],
    ) -> None:
        self._session = session
        self._states = states
        self._wake_up = wake_up
        self._after_each = after_each
        self._queue: deque[QueuedSpeech] = deque()
        self._ready: asyncio.Event | None = None  # set when something is queued
        self._running: QueuedSpeech | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        """Whether utterances are accepted (the session started)."""
        return self._ready is not None

    @property
    def current(self) -> SpeechHandle | None:
        """The utterance running now, if any."""
        return self._running.handle if self._running is not None else None

    @property
    def busy(self) -> bool:
        """Whether an utterance runs or waits."""
        return any(not s.handle.done() for s in self._entries())

    def reply_pending(self) -> bool:
        """Whether a reply (or the answer to a user turn) runs or waits."""
        return any(s.handle.source in ("reply", "user_turn") and not s.handle.done() for s in self._entries())

    def _entries(self) -> list[QueuedSpeech]:
        return [self._running, *self._queue] if self._running is not None else list(self._queue)

    # -- queueing ----------------------------------------------------------------
    def open(self) -> None:
        """Accept utterances (they run once :meth:`start` is called)."""
        self._ready = asyncio.Event()

    def start(self) -> None:
        """Start the scheduler task."""
        name = f"{self._session.id}-speech"
        self._task = asyncio.get_running_loop().create_task(self._run(), name=name)

    def enqueue(
        self,
        handle: SpeechHandle,
        run: Callable[[], Awaitable[None]],
        *,
        front: bool = False,
        user_text: str | None = None,
        user_timing: UserTurnTiming | None = None,
    ) -> SpeechHandle:
        """Queue an utterance (discarded when the session is not running)."""
        if self._session.closed or self._ready is None:
            if self._ready is None:
                self._session.report_error("session", "the session is not started")
            handle._discard()
            return handle
        entry = QueuedSpeech(handle, run, user_text, user_timing)
        if front:
            self._queue.appendleft(entry)
        else:
            self._queue.append(entry)
        self._ready.set()
        return handle

    def start_user_turn(
        self, transcript: str, source: SpeechSource = "user_turn", timing: UserTurnTiming | None = None
    ) -> SpeechHandle:
        """The user's turn is committed: queue its reply first.

        A user turn still waiting for its reply joins this one, words in
        order: its text reaches the chat context only when its reply runs, so
        discarding it would lose what the user said. A queued ``reply()`` is
        superseded by the user's turn.
        """
        self._wake_up.user_activity()
        earlier: list[str] = []
        for queued in list(self._queue):
            if queued.handle.source in ("reply", "user_turn"):
                self._queue.remove(queued)
                queued.handle._discard()
                if queued.handle.source == "user_turn" and queued.user_text:
                    earlier.append(queued.user_text)
                    timing = _merged_timing(queued.user_timing, timing)
        if earlier:
            transcript = " ".join([*earlier, transcript])
        handle = SpeechHandle(source)
        pipeline = self._session.pipeline
        return self.enqueue(
            handle,
            lambda: pipeline.generate_reply(handle, user_text=transcript),
            front=True,
            user_text=transcript,
            user_timing=timing,
        )

    # -- running -----------------------------------------------------------------
    async def _run(self) -> None:
        session, ready = self._session, self._ready
        assert ready is not None
        with session_context(session.id):
            while True:
                while not self._queue:
                    ready.clear()
                    await ready.wait()
                entry = self._queue.popleft()
                handle = entry.handle
                if handle.done():
                    continue
                self._running = entry
                self._wake_up.cancel()
                self._trim_context()
                loop = asyncio.get_running_loop()
                session.observers.notify(
                    UtteranceStarted(handle.id, handle.source, loop.time(), entry.user_timing, entry.user_text)
                )
                try:
                    await entry.run()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    session.report_error("speech", exc)
                finally:
                    self._running = None
                    session.observers.notify(
                        UtteranceEnded(handle.id, loop.time(), handle.text, handle.interrupted, handle.discarded)
                    )
                    handle._mark_done()
                    if not session.closed:
                        self._states.settle()
                await self._after_each()
                if not self._queue:
                    self._wake_up.arm()

    def _trim_context(self) -> None:
        """Apply the context limits before a reply (see :class:`SessionLimits`)."""
        limits = self._session.limits
        dropped = trim_chat_context(
            self._session.agent.chat_context,
            max_items=limits.max_context_items,
            max_chars=limits.max_context_chars,
            keep=limits.context_keep,
        )
        if dropped:
            logger.debug("chat context over its limits: dropped the {} oldest items", dropped)

    def interrupt_all(self) -> SpeechHandle | None:
        """Stop every utterance, even non-interruptible ones; returns the running one."""
        current = self.current
        for entry in self._entries():
            entry.handle.interrupt(force=True)
        return current

    async def aclose(self) -> None:
        """Stop the scheduler and discard what still waits."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for entry in self._queue:
            entry.handle._discard()
        self._queue.clear()


def _merged_timing(earlier: UserTurnTiming | None, later: UserTurnTiming | None) -> UserTurnTiming | None:
    """Timing of two user turns answered as one: the later turn's, from the
    earlier turn's start of speech."""
    if later is None or earlier is None or earlier.speech_started_at is None:
        return later or earlier
    return dataclasses.replace(later, speech_started_at=earlier.speech_started_at)
