"""Entry point of the ``redis`` plugin: registers the Redis session store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vocalis import hookimpl
from vocalis_redis.store import RedisSessionStore

if TYPE_CHECKING:
    from vocalis.plugin.registry import ProviderRegister
    from vocalis.providers.session_store import SessionStore


@hookimpl
def vocalis_register_session_store(register: ProviderRegister[SessionStore]) -> None:
    """Register :class:`RedisSessionStore` as ``redis`` (``--store redis://...``, ``rediss://``, ``unix://``)."""
    register(RedisSessionStore)
