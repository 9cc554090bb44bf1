"""Fixtures of the google plugin's tests: the local Gemini REST server, a clean environment."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from gemini_rest_server import API_KEY, RestServer

from vocalis_google import GeminiLLM

# Variables the providers read for a key: a developer's own must not leak in.
KEY_ENV = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "VOCALIS_LLM_GOOGLE_API_KEY", "VOCALIS_REALTIME_GOOGLE_API_KEY")


@pytest.fixture(autouse=True)
def _no_google_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in KEY_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def _running_rest() -> Iterator[RestServer]:
    with RestServer() as server:
        yield server


@pytest.fixture
def rest(_running_rest: RestServer) -> Iterator[RestServer]:
    """The REST server, reset; the test fails if a request broke the API's rules."""
    _running_rest.reset()
    yield _running_rest
    assert _running_rest.violations == [], "malformed requests were sent"


@pytest.fixture
async def make_llm(rest: RestServer) -> AsyncIterator[Callable[..., GeminiLLM]]:
    """Build providers talking to the server, without retries unless asked; all closed after."""
    made: list[GeminiLLM] = []

    def make(**overrides: Any) -> GeminiLLM:
        options: dict[str, Any] = {"api_key": API_KEY, "base_url": rest.url, "max_retries": 0, "_env_file": None}
        made.append(GeminiLLM(**{**options, **overrides}))
        return made[-1]

    yield make
    for llm in made:
        await llm.aclose()


@pytest.fixture
async def live() -> AsyncIterator[Any]:
    """A Live server (script it through ``live.turns``); fails the test on a
    malformed client message or a task left running."""
    import asyncio

    from gemini_live_server import LiveServer

    before = asyncio.all_tasks()
    async with LiveServer() as server:
        yield server
        open_sockets = [c.index for c in server.connections if not c.ws.closed]
        assert not open_sockets, f"connections left open: {open_sockets}"
    assert server.problems == [], "the client sent messages the Live API refuses"
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
    assert not leaked, f"tasks left running: {leaked}"
