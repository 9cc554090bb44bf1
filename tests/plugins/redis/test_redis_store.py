"""RedisSessionStore against a real redis-server: snapshots, expiry and ownership."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from vocalis.chat.items import ChatMessage, ChatRole, FunctionCall, FunctionCallOutput
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.session_store import SessionSnapshot
from vocalis_redis import RedisSessionStore

DEADLINE = 30.0  # seconds for a short time to live to run out, generous for a loaded box

MakeStore = Callable[..., RedisSessionStore]


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client, to look at the keys the store writes."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE} s: {what}")
        await asyncio.sleep(0.05)


def conversation() -> list:
    return [
        ChatMessage(ChatRole.USER, "What's the weather in Lyon?", created_at=1.5),
        FunctionCall("call_1", "get_weather", '{"city": "Lyon"}', created_at=2.0),
        FunctionCallOutput("call_1", "get_weather", "no station answered", is_error=True, created_at=2.5),
        ChatMessage(ChatRole.ASSISTANT, "I could not find out, sorr", interrupted=True, created_at=3.0),
        ChatMessage(ChatRole.USER, "Ça ne fait rien — «merci» 🙂", created_at=4.0),
    ]


async def test_a_snapshot_saved_by_one_worker_loads_on_another(make_store: MakeStore, raw: Redis, prefix: str) -> None:
    worker_a, worker_b = make_store(), make_store()
    items = conversation()
    await worker_a.save(SessionSnapshot("s-1", "support", items, saved_at=123.0), ttl=60)

    loaded = await worker_b.load("s-1")
    assert loaded == SessionSnapshot("s-1", "support", items, saved_at=123.0)
    assert [type(item) for item in loaded.items] == [ChatMessage, FunctionCall, FunctionCallOutput] + [ChatMessage] * 2
    assert await worker_b.load("s-2") is None

    # The documented key, with the time to live given (in milliseconds).
    assert await raw.exists(f"{prefix}session:s-1") == 1
    assert 0 < await raw.pttl(f"{prefix}session:s-1") <= 60_000

    # A later save replaces the snapshot and its time to live.
    await worker_b.save(SessionSnapshot("s-1", "sales", items[:1], saved_at=124.0), ttl=600)
    assert (await worker_a.load("s-1")) == SessionSnapshot("s-1", "sales", items[:1], saved_at=124.0)
    assert 60_000 < await raw.pttl(f"{prefix}session:s-1") <= 600_000


async def test_snapshots_and_owners_expire(make_store: MakeStore, raw: Redis, prefix: str) -> None:
    worker_a, worker_b = make_store(), make_store()
    await worker_a.save(SessionSnapshot("s-ttl", "agent", conversation()), ttl=0.3)
    assert await worker_a.claim("s-ttl", "a", ttl=0.3)
    assert 0 < await raw.pttl(f"{prefix}session:s-ttl") <= 300
    assert 0 < await raw.pttl(f"{prefix}owner:s-ttl") <= 300

    async def gone() -> bool:
        return await worker_b.load("s-ttl") is None

    await eventually(gone, "the snapshot expires")

    async def free() -> bool:
        return await worker_b.claim("s-ttl", "b", ttl=60)

    await eventually(free, "a's ownership expires and b can claim")
    assert await raw.get(f"{prefix}owner:s-ttl") == b"b"


async def test_one_owner_at_a_time(make_store: MakeStore, raw: Redis, prefix: str) -> None:
    worker_a, worker_b = make_store(), make_store()
    key = f"{prefix}owner:s-own"
    assert await worker_a.claim("s-own", "a", ttl=1)
    assert not await worker_b.claim("s-own", "b", ttl=1000)
    # The refused claim changed neither the owner nor its time to live.
    assert await raw.get(key) == b"a"
    assert await raw.pttl(key) <= 1000

    # Claiming again as the owner succeeds and renews the time to live.
    assert await worker_a.claim("s-own", "a", ttl=100)
    assert 1000 < await raw.pttl(key) <= 100_000

    # Only the owner can release.
    await worker_b.release("s-own", "b")
    assert await raw.get(key) == b"a"
    assert not await worker_b.claim("s-own", "b", ttl=10)
    await worker_a.release("s-own", "a")
    assert await raw.exists(key) == 0
    assert await worker_b.claim("s-own", "b", ttl=10)
    await worker_a.release("s-own", "a")  # no longer a's: nothing happens
    assert await raw.get(key) == b"b"


async def test_concurrent_claims_have_exactly_one_winner(make_store: MakeStore) -> None:
    workers = [make_store() for _ in range(4)]
    for round_ in range(100):
        session = f"s-race-{round_}"
        # Two claims per worker: the same pool runs them on separate connections too.
        claims = [w.claim(session, f"w{i}-{j}", ttl=60) for i, w in enumerate(workers) for j in range(2)]
        won = await asyncio.gather(*claims)
        assert sum(won) == 1, f"round {round_}: {won}"


async def test_delete_forgets_the_snapshot_and_the_owner(make_store: MakeStore, raw: Redis, prefix: str) -> None:
    worker_a, worker_b = make_store(), make_store()
    await worker_a.save(SessionSnapshot("s-del", "agent", conversation()), ttl=60)
    assert await worker_a.claim("s-del", "a", ttl=60)
    await worker_b.delete("s-del")
    assert await worker_a.load("s-del") is None
    assert await raw.exists(f"{prefix}session:s-del", f"{prefix}owner:s-del") == 0
    assert await worker_b.claim("s-del", "b", ttl=60)
    await worker_b.delete("s-never-existed")  # not an error


async def test_key_prefixes_keep_deployments_apart(make_store: MakeStore) -> None:
    blue, green = make_store(key_prefix="blue:"), make_store(key_prefix="green:")
    await blue.save(SessionSnapshot("s-shared-id", "agent"), ttl=60)
    assert await green.load("s-shared-id") is None
    assert await blue.claim("s-shared-id", "a", ttl=60)
    assert await green.claim("s-shared-id", "b", ttl=60)
    await blue.delete("s-shared-id")
    await green.delete("s-shared-id")


async def test_a_value_that_is_no_snapshot_is_a_protocol_error(make_store: MakeStore, raw: Redis, prefix: str) -> None:
    store = make_store()
    await raw.set(f"{prefix}session:s-bad", b"{not json")
    with pytest.raises(ProviderError) as info:
        await store.load("s-bad")
    assert info.value.kind is ErrorKind.PROTOCOL and info.value.provider == "session_store:redis"
    await raw.set(f"{prefix}session:s-bad", b'{"items": []}')
    with pytest.raises(ProviderError, match="not a snapshot"):
        await store.load("s-bad")


async def test_prewarm_pings_and_aclose_leaves_no_connection(make_store: MakeStore, raw: Redis) -> None:
    own_id = await raw.client_id()

    async def others() -> int:
        return sum(1 for client in await raw.client_list() if int(client["id"]) != own_id)

    store = make_store()
    await store.aclose()  # never used: nothing to close
    await store.prewarm()
    await asyncio.gather(*(store.claim(f"s-pool-{i}", "a", ttl=60) for i in range(5)))
    assert await others() >= 1

    await store.aclose()
    await store.aclose()

    async def none_left() -> bool:
        return await others() == 0

    await eventually(none_left, "the server sees every connection of the store closed")

    # A closed store opens a new pool when used again.
    assert await store.claim("s-pool-0", "a", ttl=60)
    await store.aclose()
    await eventually(none_left, "the reopened pool is closed too")
