"""What RedisSessionStore raises when Redis is away or refuses it, and that no password leaks."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator

import pytest
from loguru import logger
from redis_harness import free_port

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.session_store import SessionSnapshot
from vocalis_redis import RedisSessionStore

PASSWORD = "s3cret"
# Generous for a loaded box: only guards against hanging in retries or backoff.
GUARD = 30.0

Operation = Callable[[RedisSessionStore], Awaitable[object]]
OPERATIONS: dict[str, Operation] = {
    "prewarm": lambda s: s.prewarm(),
    "save": lambda s: s.save(SessionSnapshot("s-1", "agent"), ttl=60),
    "load": lambda s: s.load("s-1"),
    "claim": lambda s: s.claim("s-1", "a", ttl=60),
    "release": lambda s: s.release("s-1", "a"),
    "delete": lambda s: s.delete("s-1"),
}


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Every loguru line written during the test, at every level."""
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="TRACE", format="{message}")
    yield lines
    logger.remove(sink)


def chain_text(exc: BaseException) -> str:
    """The text and repr of ``exc`` and of every exception it was raised from."""
    parts = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


async def failure(store: RedisSessionStore, operation: Operation) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await asyncio.wait_for(operation(store), GUARD)
    return info.value


@pytest.mark.parametrize("name", list(OPERATIONS))
async def test_a_dead_server_is_a_connection_error_without_the_password(name: str, logs: list[str]) -> None:
    store = RedisSessionStore(url=f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0", connect_timeout=5)
    try:
        error = await failure(store, OPERATIONS[name])
    finally:
        await store.aclose()
    assert error.kind is ErrorKind.CONNECTION and error.recoverable
    assert error.provider == "session_store:redis" and "127.0.0.1" in str(error)
    assert PASSWORD not in chain_text(error)
    assert PASSWORD not in repr(store)
    assert logs and not [line for line in logs if PASSWORD in line]


async def test_a_missing_socket_is_a_connection_error(tmp_path, logs: list[str]) -> None:
    socket_path = tmp_path / "none.sock"
    store = RedisSessionStore(url=f"unix://{socket_path}?db=0&password={PASSWORD}")
    assert store.address == str(socket_path)
    try:
        error = await failure(store, OPERATIONS["claim"])
    finally:
        await store.aclose()
    assert error.kind is ErrorKind.CONNECTION
    assert PASSWORD not in chain_text(error) and not [line for line in logs if PASSWORD in line]


async def test_a_server_that_never_answers_is_a_timeout(logs: list[str]) -> None:
    # A listening socket nobody accepts from: connecting works, no answer comes.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        store = RedisSessionStore(
            url=f"redis://:{PASSWORD}@127.0.0.1:{port}/0", socket_timeout=0.2, connect_timeout=0.2
        )
        try:
            error = await failure(store, OPERATIONS["claim"])
        finally:
            await store.aclose()
    assert error.kind is ErrorKind.TIMEOUT and error.recoverable
    assert PASSWORD not in chain_text(error) and not [line for line in logs if PASSWORD in line]


async def test_a_refused_password_is_an_auth_error(redis_port: int, logs: list[str]) -> None:
    # The test server has no such user: Redis answers WRONGPASS.
    store = RedisSessionStore(url=f"redis://nobody:{PASSWORD}@127.0.0.1:{redis_port}/0")
    try:
        error = await failure(store, OPERATIONS["save"])
    finally:
        await store.aclose()
    assert error.kind is ErrorKind.AUTH and not error.recoverable
    assert PASSWORD not in chain_text(error) and not [line for line in logs if PASSWORD in line]


@pytest.mark.parametrize(
    "url",
    [f"redis://:{PASSWORD}@127.0.0.1:notaport/0", f"http://:{PASSWORD}@127.0.0.1:6379/0"],
    ids=["bad-port", "bad-scheme"],
)
async def test_a_malformed_url_is_a_bad_request_without_the_password(url: str, logs: list[str]) -> None:
    store = RedisSessionStore(url=url)
    error = await failure(store, OPERATIONS["load"])
    await store.aclose()
    assert error.kind is ErrorKind.BAD_REQUEST and not error.recoverable
    assert PASSWORD not in chain_text(error) and not [line for line in logs if PASSWORD in line]


async def test_a_time_to_live_must_be_finite(make_store) -> None:
    store = make_store()
    with pytest.raises(ProviderError) as info:
        await store.save(SessionSnapshot("s-1", "agent"), ttl=float("inf"))
    assert info.value.kind is ErrorKind.BAD_REQUEST
    with pytest.raises(ProviderError):
        await store.claim("s-1", "a", ttl=float("nan"))
