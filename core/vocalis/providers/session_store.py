"""Where serving processes keep conversations, so a dropped client can resume.

``vocalis serve`` saves each session's conversation (its chat items and the
agent's name) to a :class:`SessionStore` as it goes, and once more when the
session ends. A client that reconnects with the session's id within the
store's grace period continues the same conversation on whichever worker it
reaches. A store also keeps who *owns* a session (one worker at a time), so
two workers never run the same conversation.

The core ships :class:`MemorySessionStore` (one process: ``vocalis serve``
with a single worker); the ``vocalis-redis`` plugin stores sessions in Redis
so every worker and host shares them. Register another with the
``vocalis_register_session_store`` hook.
"""

from __future__ import annotations

import asyncio
import json
import time
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from vocalis.chat.context import ChatContext
from vocalis.chat.items import ChatItem, ChatMessage, FunctionCall, FunctionCallOutput
from vocalis.providers.base import Provider, ProviderKind
from vocalis.settings import ProviderSettings, provider_settings_config

__all__ = ["MemorySessionStore", "SessionSnapshot", "SessionStore", "chat_from_json", "chat_to_json"]

JSONItem = dict[str, str | bool | float]


def chat_to_json(items: list[ChatItem]) -> list[JSONItem]:
    """Chat items as JSON-ready dicts (``type`` tells which item each is)."""
    out: list[JSONItem] = []
    for item in items:
        if isinstance(item, ChatMessage):
            out.append(
                {
                    "type": "message",
                    "role": item.role.value,
                    "content": item.content,
                    "interrupted": item.interrupted,
                    "id": item.id,
                    "created_at": item.created_at,
                }
            )
        elif isinstance(item, FunctionCall):
            out.append(
                {
                    "type": "function_call",
                    "call_id": item.call_id,
                    "name": item.name,
                    "arguments": item.arguments,
                    "id": item.id,
                    "created_at": item.created_at,
                }
            )
        else:
            out.append(
                {
                    "type": "function_call_output",
                    "call_id": item.call_id,
                    "name": item.name,
                    "output": item.output,
                    "is_error": item.is_error,
                    "id": item.id,
                    "created_at": item.created_at,
                }
            )
    return out


def chat_from_json(data: object) -> list[ChatItem]:
    """The inverse of :func:`chat_to_json`.

    Raises:
        ValueError: ``data`` is not a list of chat items.
    """
    if not isinstance(data, list):
        raise ValueError("chat items must be a list")
    items: list[ChatItem] = []
    for raw in data:
        if not isinstance(raw, dict):
            raise ValueError("a chat item must be an object")
        try:
            kind = raw["type"]
            common = {"id": str(raw["id"]), "created_at": float(raw.get("created_at", 0.0))}
            if kind == "message":
                items.append(
                    ChatMessage(str(raw["role"]), str(raw["content"]), bool(raw.get("interrupted", False)), **common)  # type: ignore[arg-type]
                )
            elif kind == "function_call":
                items.append(FunctionCall(str(raw["call_id"]), str(raw["name"]), str(raw["arguments"]), **common))  # type: ignore[arg-type]
            elif kind == "function_call_output":
                items.append(
                    FunctionCallOutput(
                        str(raw["call_id"]),
                        str(raw["name"]),
                        str(raw["output"]),
                        bool(raw.get("is_error", False)),
                        **common,  # type: ignore[arg-type]
                    )
                )
            else:
                raise ValueError(f"unknown chat item type {kind!r}")
        except KeyError as exc:
            raise ValueError(f"a chat item lacks {exc.args[0]!r}") from None
    return items


@dataclass(frozen=True)
class SessionSnapshot:
    """What a worker needs to continue a conversation.

    Attributes:
        session_id: The session's id (what the client reconnects with).
        agent: The name of the agent that was speaking.
        items: The conversation, instructions excluded (the new agent brings its own).
        saved_at: When it was saved (Unix time).
    """

    session_id: str
    agent: str
    items: list[ChatItem] = field(default_factory=list)
    saved_at: float = 0.0

    def to_json(self) -> str:
        """The snapshot as one JSON document."""
        return json.dumps(
            {
                "session_id": self.session_id,
                "agent": self.agent,
                "items": chat_to_json(self.items),
                "saved_at": self.saved_at or time.time(),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SessionSnapshot:
        """Parse :meth:`to_json`'s output.

        Raises:
            ValueError: Not a snapshot.
        """
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("session_id"), str):
            raise ValueError("not a session snapshot")
        return cls(
            session_id=data["session_id"],
            agent=str(data.get("agent", "")),
            items=chat_from_json(data.get("items", [])),
            saved_at=float(data.get("saved_at", 0.0)),
        )

    @classmethod
    def of(cls, session_id: str, agent: str, chat: ChatContext) -> SessionSnapshot:
        """A snapshot of ``chat`` now (instructions left out)."""
        items = list(chat.copy(exclude_instructions=True))
        return cls(session_id=session_id, agent=agent, items=items, saved_at=time.time())


class SessionStore(Provider):
    """Keeps session snapshots and who owns each session.

    Every method is safe to call from many workers at once; ownership is
    what keeps two of them from running one conversation.
    """

    kind: ClassVar[ProviderKind] = ProviderKind.SESSION_STORE
    schemes: ClassVar[tuple[str, ...]] = ()
    """URL schemes this store serves (``vocalis serve --store redis://...``)."""

    @abstractmethod
    async def save(self, snapshot: SessionSnapshot, *, ttl: float) -> None:
        """Keep ``snapshot`` (replacing an older one) for ``ttl`` seconds."""

    @abstractmethod
    async def load(self, session_id: str) -> SessionSnapshot | None:
        """The session's latest snapshot, or None if none is kept."""

    @abstractmethod
    async def claim(self, session_id: str, owner: str, *, ttl: float) -> bool:
        """Make ``owner`` the session's only owner for ``ttl`` seconds.

        Returns:
            True if ``owner`` owns it now (it was free, or already ``owner``'s);
            False if another owner holds it.
        """

    @abstractmethod
    async def release(self, session_id: str, owner: str) -> None:
        """Give up ownership, if ``owner`` has it."""

    @abstractmethod
    async def delete(self, session_id: str) -> None:
        """Forget the session (its snapshot and its owner)."""


class MemorySessionStore(SessionStore):
    """Sessions kept in this process: resume works on the same worker only."""

    name = "memory"
    schemes = ("memory",)

    class Settings(ProviderSettings):
        model_config = provider_settings_config("session_store", "memory")

    def __init__(self, *, settings: ProviderSettings | None = None, **overrides: object) -> None:
        super().__init__(settings=settings, **overrides)
        self._snapshots: dict[str, tuple[float, SessionSnapshot]] = {}
        self._owners: dict[str, tuple[float, str]] = {}
        self._lock = asyncio.Lock()

    def _now(self) -> float:
        # The loop's clock: every method runs on it, and tests may run it on virtual time.
        return asyncio.get_running_loop().time()

    async def save(self, snapshot: SessionSnapshot, *, ttl: float) -> None:
        self._expire()
        self._snapshots[snapshot.session_id] = (self._now() + ttl, snapshot)

    async def load(self, session_id: str) -> SessionSnapshot | None:
        self._expire()
        kept = self._snapshots.get(session_id)
        return kept[1] if kept is not None else None

    async def claim(self, session_id: str, owner: str, *, ttl: float) -> bool:
        async with self._lock:
            self._expire()
            held = self._owners.get(session_id)
            if held is not None and held[1] != owner:
                return False
            self._owners[session_id] = (self._now() + ttl, owner)
            return True

    async def release(self, session_id: str, owner: str) -> None:
        held = self._owners.get(session_id)
        if held is not None and held[1] == owner:
            del self._owners[session_id]

    async def delete(self, session_id: str) -> None:
        self._snapshots.pop(session_id, None)
        self._owners.pop(session_id, None)

    def _expire(self) -> None:
        now = self._now()
        for table in (self._snapshots, self._owners):
            for key in [k for k, (deadline, _) in table.items() if deadline <= now]:
                del table[key]
