"""A real redis-server per test module, on a free loopback port, in a temp dir.

The server keeps nothing on disk (``--save ''``, no append-only file) and is
stopped at the end of the module. Without Debian's ``redis-server`` the tests
that need it skip, unless ``VOCALIS_REQUIRE_REDIS`` is set (as in CI), where a
missing server fails the run instead.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from redis_harness import REQUIRE_REDIS, find_server, start_server, stop_server

from vocalis_redis import RedisSessionStore


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port of this module's redis-server."""
    binary = find_server()
    if binary is None:
        if REQUIRE_REDIS:
            pytest.fail("VOCALIS_REQUIRE_REDIS is set but redis-server is not installed")
        pytest.skip("needs a redis-server binary (Debian's redis-server package)")
    proc, port = start_server(binary, tmp_path_factory.mktemp("redis"))
    try:
        yield port
    finally:
        stop_server(proc)


@pytest.fixture
def redis_url(redis_port: int) -> str:
    """The URL of this module's redis-server."""
    return f"redis://127.0.0.1:{redis_port}/0"


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test alone, so tests never see each other's keys."""
    return f"test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture
async def make_store(redis_url: str, prefix: str) -> AsyncIterator[Callable[..., RedisSessionStore]]:
    """Make stores (one per simulated worker) on this module's server; all closed after the test."""
    made: list[RedisSessionStore] = []

    def make(**overrides: object) -> RedisSessionStore:
        store = RedisSessionStore(**{"url": redis_url, "key_prefix": prefix, **overrides})
        made.append(store)
        return store

    yield make
    for store in made:
        await store.aclose()
