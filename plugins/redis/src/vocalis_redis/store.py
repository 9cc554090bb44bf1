"""Session snapshots and ownership kept in Redis, shared by every worker and host.

Two keys per session, both with a time to live so an abandoned session
disappears by itself:

- ``<prefix>session:<id>``: the snapshot's JSON (``SET ... PX``);
- ``<prefix>owner:<id>``: the id of the worker running it. Claiming and
  releasing are small Lua scripts, so "free or already mine, then take it"
  and "delete only if mine" each happen atomically on the server, whatever
  the number of workers racing for the same session.

The connection pool is made on first use, in the event loop that uses it.
Errors of Redis become :class:`~vocalis.providers.base.ProviderError` with a
:class:`~vocalis.providers.base.ErrorKind` the server can branch on; the URL's
password appears in no message and no log line.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from loguru import logger
from pydantic import Field, SecretStr
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from vocalis.providers.base import ErrorKind, ProviderError, describe_cause
from vocalis.providers.session_store import SessionSnapshot, SessionStore
from vocalis.settings import ProviderSettings, provider_settings_config

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

__all__ = ["RedisSessionStore"]

# KEYS[1] = owner key, ARGV[1] = owner, ARGV[2] = ttl in ms. Free or already
# ours: (re)take it with a fresh time to live; another owner's: leave it.
CLAIM_SCRIPT = """
local held = redis.call('GET', KEYS[1])
if held == false or held == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
"""

# KEYS[1] = owner key, ARGV[1] = owner: delete it only if it is still ours
# (it may have expired and been claimed by another worker since).
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def _milliseconds(ttl: float) -> int:
    """A time to live for ``PX``: at least 1 ms (Redis refuses 0 and less)."""
    if not math.isfinite(ttl):
        raise ValueError(f"a time to live must be a finite number of seconds, not {ttl!r}")
    return max(1, math.ceil(ttl * 1000))


class RedisSessionStore(SessionStore):
    """Sessions kept in Redis: a dropped client can resume on any worker.

    Select it with ``vocalis serve --store redis://host:6379/0`` (or
    ``rediss://`` for TLS, ``unix:///path/redis.sock?db=0`` for a socket).
    """

    name = "redis"
    schemes = ("redis", "rediss", "unix")

    class Settings(ProviderSettings):
        """Settings of :class:`RedisSessionStore` (``VOCALIS_SESSION_STORE_REDIS_*``).

        Attributes:
            url: Where Redis is, as ``redis://[[user]:password@]host:port/db``,
                ``rediss://...`` or ``unix:///path?db=N``. A secret, as it may
                carry a password: only its host and port are ever logged.
            key_prefix: Put before every key, so several deployments can share
                one database.
            socket_timeout: Seconds a command may wait for its answer.
            connect_timeout: Seconds a connection may take to open.
        """

        model_config = provider_settings_config("session_store", "redis")

        url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
        key_prefix: str = "vocalis:"
        socket_timeout: float = Field(5.0, gt=0)
        connect_timeout: float = Field(2.0, gt=0)

    settings: Settings

    def __init__(self, *, settings: ProviderSettings | None = None, **overrides: Any) -> None:
        super().__init__(settings=settings, **overrides)
        self._client: Redis | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._claim: AsyncScript | None = None
        self._release: AsyncScript | None = None

    @property
    def address(self) -> str:
        """``host:port`` (or the socket's path) of the server, safe to log and show."""
        try:
            parts = urlsplit(self.settings.url.get_secret_value())
        except ValueError:  # e.g. an unclosed IPv6 bracket: the error says so on first use
            return "?"
        if parts.scheme == "unix":
            return parts.path or "?"
        host = parts.hostname or "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        try:
            port = str(parts.port or 6379)
        except ValueError:  # an invalid port: shown as such, the error comes on first use
            port = "?"
        return f"{host}:{port}"

    def _secrets(self) -> list[str]:
        """The URL's password, as written and percent-decoded (for redaction)."""
        url = self.settings.url.get_secret_value()
        found = {url}
        try:
            parts = urlsplit(url)
            password = parts.password
        except ValueError:
            return [url]
        if password:
            found.update({password, unquote(password)})
        for part in parts.query.split("&"):  # unix://...?password=...
            key, _, value = part.partition("=")
            if key == "password" and value:
                found.update({value, unquote(value)})
        return sorted(found, key=len, reverse=True)

    def _redact(self, text: str) -> str:
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return text

    def _connection(self) -> Redis:
        """The client of this event loop, made on first use (no I/O yet)."""
        loop = asyncio.get_running_loop()
        if self._client is not None and self._client_loop is not loop:
            # Pooled connections belong to the loop that opened them and the
            # old loop may be gone, so the old client can only be dropped.
            self._client = None
        if self._client is None:
            s = self.settings
            with self._translate("open"):
                client = Redis.from_url(
                    s.url.get_secret_value(),
                    socket_timeout=s.socket_timeout,
                    socket_connect_timeout=s.connect_timeout,
                    # One immediate retry on a dropped connection (a pooled
                    # socket the server closed meanwhile), none on timeouts.
                    retry=Retry(NoBackoff(), 1, supported_errors=(redis_errors.ConnectionError,)),
                )
            self._claim = client.register_script(CLAIM_SCRIPT)
            self._release = client.register_script(RELEASE_SCRIPT)
            self._client, self._client_loop = client, loop
            logger.debug("session store: Redis at {} (keys under {!r})", self.address, s.key_prefix)
        return self._client

    @contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        """Raise Redis's errors as ProviderErrors of the right kind, without secrets."""
        try:
            yield
        except ProviderError:
            raise
        except (redis_errors.AuthenticationError, redis_errors.AuthorizationError) as exc:
            raise self._error(action, "refused the credentials", ErrorKind.AUTH, exc, recoverable=False) from exc
        except (redis_errors.TimeoutError, TimeoutError) as exc:
            raise self._error(action, "did not answer in time", ErrorKind.TIMEOUT, exc) from exc
        except (redis_errors.ConnectionError, OSError) as exc:
            raise self._error(action, "could not be reached", ErrorKind.CONNECTION, exc) from exc
        except redis_errors.ResponseError as exc:
            raise self._error(action, "refused the command", ErrorKind.SERVER, exc) from exc
        except redis_errors.RedisError as exc:
            raise self._error(action, "failed", ErrorKind.UNKNOWN, exc) from exc
        except ValueError as exc:  # a malformed URL, or a time to live that is no number
            raise self._error(action, "was not asked", ErrorKind.BAD_REQUEST, exc, recoverable=False) from exc

    def _error(
        self, action: str, what: str, kind: ErrorKind, exc: BaseException, *, recoverable: bool = True
    ) -> ProviderError:
        message = f"{action}: Redis at {self.address} {what}{describe_cause(exc)}"
        return self.error(self._redact(message), kind=kind, recoverable=recoverable)

    def _key(self, kind: str, session_id: str) -> str:
        return f"{self.settings.key_prefix}{kind}:{session_id}"

    async def prewarm(self) -> None:
        """Check that Redis answers (opens the first pooled connection)."""
        client = self._connection()
        with self._translate("ping"):
            await client.ping()

    async def save(self, snapshot: SessionSnapshot, *, ttl: float) -> None:
        """Keep ``snapshot`` (replacing an older one) for ``ttl`` seconds.

        Raises:
            ProviderError: Redis failed (kind ``CONNECTION``, ``TIMEOUT``, ...).
        """
        client = self._connection()
        with self._translate("save"):
            await client.set(self._key("session", snapshot.session_id), snapshot.to_json(), px=_milliseconds(ttl))

    async def load(self, session_id: str) -> SessionSnapshot | None:
        """The session's latest snapshot, or None if none is kept.

        Raises:
            ProviderError: Redis failed, or what it kept is no snapshot (kind ``PROTOCOL``).
        """
        client = self._connection()
        with self._translate("load"):
            raw = await client.get(self._key("session", session_id))
        if raw is None:
            return None
        try:
            return SessionSnapshot.from_json(raw)
        except (ValueError, TypeError) as exc:
            # Only the type of error: the text could quote the stored conversation.
            raise self.error(
                f"load: the value kept for session {session_id!r} is not a snapshot ({type(exc).__name__})",
                kind=ErrorKind.PROTOCOL,
                recoverable=False,
            ) from exc

    async def claim(self, session_id: str, owner: str, *, ttl: float) -> bool:
        """Make ``owner`` the session's only owner for ``ttl`` seconds (atomically).

        Returns:
            True if ``owner`` owns it now (it was free, or already ``owner``'s,
            whose time to live is then renewed); False if another owner holds it.

        Raises:
            ProviderError: Redis failed.
        """
        self._connection()
        assert self._claim is not None  # made with the client
        with self._translate("claim"):
            won = await self._claim(keys=[self._key("owner", session_id)], args=[owner, _milliseconds(ttl)])
        return bool(won)

    async def release(self, session_id: str, owner: str) -> None:
        """Give up ownership if ``owner`` has it; another owner's claim stays.

        Raises:
            ProviderError: Redis failed.
        """
        self._connection()
        assert self._release is not None  # made with the client
        with self._translate("release"):
            await self._release(keys=[self._key("owner", session_id)], args=[owner])

    async def delete(self, session_id: str) -> None:
        """Forget the session: its snapshot and its owner.

        Raises:
            ProviderError: Redis failed.
        """
        client = self._connection()
        with self._translate("delete"):
            await client.delete(self._key("session", session_id), self._key("owner", session_id))

    async def aclose(self) -> None:
        """Close the pooled connections. Idempotent; a later call opens a new pool."""
        client, self._client, self._client_loop = self._client, None, None
        self._claim = self._release = None
        if client is None:
            return
        try:
            await client.aclose()
        except (redis_errors.RedisError, OSError) as exc:
            # Closing a connection the server already dropped: nothing is left to free.
            logger.debug("session store: closing Redis at {} failed{}", self.address, self._redact(describe_cause(exc)))
