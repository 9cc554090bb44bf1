"""Registration of the Redis session store and its settings."""

from __future__ import annotations

import pytest

from vocalis import make_plugin_manager
from vocalis.providers.base import ProviderKind
from vocalis.providers.session_store import MemorySessionStore, SessionStore
from vocalis_redis import RedisSessionStore


def test_registered_as_the_redis_session_store() -> None:
    registry = make_plugin_manager().registry
    entries = {entry.name: entry for entry in registry.entries("session_store")}
    assert entries["redis"].cls is RedisSessionStore
    assert entries["memory"].cls is MemorySessionStore  # the core's, still there
    assert issubclass(RedisSessionStore, SessionStore)
    assert RedisSessionStore.kind is ProviderKind.SESSION_STORE
    assert RedisSessionStore.schemes == ("redis", "rediss", "unix")
    # Every scheme is served by one store only.
    schemes = [scheme for entry in entries.values() for scheme in entry.cls.schemes]
    assert len(schemes) == len(set(schemes))


def test_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    store = RedisSessionStore()
    assert store.label == "session_store:redis"
    assert store.settings.url.get_secret_value() == "redis://127.0.0.1:6379/0"
    assert store.settings.key_prefix == "vocalis:" and store.address == "127.0.0.1:6379"

    monkeypatch.setenv("VOCALIS_SESSION_STORE_REDIS_URL", "rediss://user:pa%40ss@cache.internal:6380/2")
    monkeypatch.setenv("VOCALIS_SESSION_STORE_REDIS_KEY_PREFIX", "prod:")
    monkeypatch.setenv("VOCALIS_SESSION_STORE_REDIS_SOCKET_TIMEOUT", "1.5")
    monkeypatch.setenv("VOCALIS_SESSION_STORE_REDIS_CONNECT_TIMEOUT", "0.5")
    store = RedisSessionStore()
    assert store.address == "cache.internal:6380"
    assert (store.settings.key_prefix, store.settings.socket_timeout, store.settings.connect_timeout) == (
        "prod:",
        1.5,
        0.5,
    )
    # The URL is a secret: neither the password nor the URL shows in the repr.
    assert "pa%40ss" not in repr(store) and "pa@ss" not in repr(store) and "cache.internal" not in repr(store)
    # An explicit value (what `vocalis serve --store URL` passes) wins over the environment.
    assert RedisSessionStore(url="unix:///run/redis/redis.sock?db=1").address == "/run/redis/redis.sock"


def test_timeouts_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RedisSessionStore(socket_timeout=0)
    with pytest.raises(ValueError):
        RedisSessionStore(connect_timeout=-1)
