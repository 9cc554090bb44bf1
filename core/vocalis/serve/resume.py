"""Session resume: conversations saved as they go, continued on any worker.

A :class:`Resumer` saves each session's conversation to the server's
:class:`~vocalis.providers.session_store.SessionStore` after every turn, tool
call and handoff (coalesced: at most one save in flight per session), and
once more when the session closes, whatever the reason. The store keeps it
for ``resume_grace`` seconds. A client that reconnects with the session id
within that time gets a new session with the *same* id whose agent starts
from the saved conversation (its ``on_enter`` greeting is skipped: the
conversation goes on).

Ownership keeps one conversation on one worker: a worker claims the id
before it runs the session and releases it after the final save. The claim
is a short lease (``lease`` seconds) that one timer renews for every running
session, so the calls of a worker that crashed (no final save, no release)
can be resumed elsewhere ``lease`` seconds later, from their last save. A
reconnect that reaches a new worker while the old one is still closing the
dropped session waits for the claim (``claim_wait`` seconds) and so sees the
final save.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import socket
from typing import TYPE_CHECKING

from loguru import logger

from vocalis.providers.session_store import SessionSnapshot, SessionStore

if TYPE_CHECKING:
    from vocalis.session.agent import Agent
    from vocalis.session.agent_session import AgentSession

SESSION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
"""What a session id a client sends may look like."""
_SAVE_ON = ("user_turn", "agent_turn", "function_call", "agent_handoff")
_CLAIM_POLL = 0.1


def worker_id() -> str:
    """A server's name in the store: ``host:pid:random`` (two servers in one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class ResumeRefused(Exception):
    """The session runs on another worker (still owned there)."""


class Resumer:
    """Saves and restores one server's sessions.

    Args:
        store: Where conversations are kept.
        grace: Seconds a conversation stays resumable after its last save.
        claim_wait: Seconds a reconnect waits for the old worker to let go.
        lease: Seconds a claim lasts unless renewed (renewed every third of it).
    """

    def __init__(
        self, store: SessionStore, *, grace: float = 120.0, claim_wait: float = 5.0, lease: float = 15.0
    ) -> None:
        self.store = store
        self.grace = grace
        self.claim_wait = claim_wait
        self.lease = lease
        self._live: set[AgentSession] = set()
        self._renewer: asyncio.Task[None] | None = None
        self.owner = worker_id()
        self._dirty: set[AgentSession] = set()
        self._saving: dict[AgentSession, asyncio.Task[None]] = {}
        self._final: set[asyncio.Task[None]] = set()

    async def restore(self, session_id: str) -> SessionSnapshot | None:
        """Claim ``session_id`` and return its saved conversation (None: nothing kept).

        Raises:
            ResumeRefused: Another worker still owns it after ``claim_wait`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.claim_wait
        while not await self.store.claim(session_id, self.owner, ttl=self.lease):
            if loop.time() >= deadline:
                raise ResumeRefused(f"session {session_id} is still running on another worker")
            await asyncio.sleep(_CLAIM_POLL)
        snapshot = await self.store.load(session_id)
        if snapshot is None:
            await self.store.release(session_id, self.owner)
        return snapshot

    async def claim_new(self, session_id: str) -> None:
        """Own a brand-new session's id."""
        await self.store.claim(session_id, self.owner, ttl=self.lease)

    @staticmethod
    def apply(snapshot: SessionSnapshot, agent: Agent) -> int:
        """Put the saved conversation into a fresh ``agent`` (after its instructions).

        Returns:
            How many items were restored.
        """
        for item in snapshot.items:
            agent.chat_context.append(item)
        return len(snapshot.items)

    def follow(self, session: AgentSession) -> None:
        """Save ``session``'s conversation as it goes and when it closes."""
        session.on_any(lambda name, _args: self._mark(session) if name in _SAVE_ON else None)
        session.on("close", lambda *_: self._final_save(session))
        self._live.add(session)
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        """Renew the lease of every running session, on one timer for all."""
        while self._live:
            await asyncio.sleep(self.lease / 3)
            for session in list(self._live):
                try:
                    if not await self.store.claim(session.id, self.owner, ttl=self.lease):
                        logger.warning("session {}: another worker took it over", session.id)
                except Exception as exc:  # the store is down: the call goes on, resume may not
                    logger.warning("session {}: renewing its claim failed: {}", session.id, exc)

    def _mark(self, session: AgentSession) -> None:
        self._dirty.add(session)
        if session not in self._saving:
            task = asyncio.get_running_loop().create_task(self._save_loop(session))
            self._saving[session] = task

    async def _save_loop(self, session: AgentSession) -> None:
        try:
            while session in self._dirty:
                self._dirty.discard(session)
                await self._save(session)
        finally:
            self._saving.pop(session, None)

    async def _save(self, session: AgentSession) -> None:
        snapshot = SessionSnapshot.of(session.id, session.agent.name, session.agent.chat_context)
        try:
            await self.store.save(snapshot, ttl=self.grace)
        except Exception as exc:  # the conversation goes on without resume
            logger.warning("session {}: saving it for resume failed: {}", session.id, exc)

    def _final_save(self, session: AgentSession) -> None:
        self._live.discard(session)
        self._dirty.discard(session)
        running = self._saving.pop(session, None)

        async def finish() -> None:
            if running is not None:
                await asyncio.wait([running])
            await self._save(session)
            try:
                await self.store.release(session.id, self.owner)
            except Exception as exc:
                logger.warning("session {}: releasing it in the store failed: {}", session.id, exc)

        task = asyncio.get_running_loop().create_task(finish())
        self._final.add(task)
        task.add_done_callback(self._final.discard)

    async def aclose(self) -> None:
        """Wait for the final saves, then close the store. Idempotent."""
        while self._final or self._saving:
            await asyncio.gather(*self._final, *self._saving.values(), return_exceptions=True)
        renewer, self._renewer = self._renewer, None
        if renewer is not None and not renewer.done():
            renewer.cancel()
            await asyncio.wait([renewer])
        await self.store.aclose()
