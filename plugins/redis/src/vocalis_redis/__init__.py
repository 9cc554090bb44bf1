"""A Redis session store for ``vocalis serve``: resume a conversation on any worker.

``vocalis serve --workers 4 --store redis://127.0.0.1:6379/0`` keeps every
session's conversation and its owner in Redis, so a client that reconnects
with its session id continues where it was, whichever worker or host it
reaches. See :class:`RedisSessionStore`.
"""

from __future__ import annotations

from vocalis.log import quiet_library
from vocalis_redis.store import RedisSessionStore

__all__ = ["RedisSessionStore"]

# Quiet as a library: the application (or the vocalis CLI) enables this package's log.
quiet_library(__name__)
