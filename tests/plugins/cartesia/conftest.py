"""Fixtures of the cartesia plugin's tests: the local Cartesia server and providers pointed at it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from cartesia_server import API_KEY, CartesiaServer

from vocalis_cartesia import CartesiaTTS


@pytest.fixture(autouse=True)
def _no_sdk_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's variable, if the machine has one, stays out of the tests."""
    monkeypatch.delenv("CARTESIA_API_KEY", raising=False)
    assert "CARTESIA_API_KEY" not in os.environ


@pytest.fixture
async def server() -> AsyncIterator[CartesiaServer]:
    """The server in the test's loop; the test fails if a request broke the API's rules."""
    async with CartesiaServer() as running:
        yield running
    assert running.violations == [], "malformed requests were sent"


@pytest.fixture
async def make_tts(server: CartesiaServer) -> AsyncIterator[Callable[..., CartesiaTTS]]:
    """Build providers talking to the server; each is closed after the test."""
    made: list[CartesiaTTS] = []

    def make(**overrides: Any) -> CartesiaTTS:
        options: dict[str, Any] = {"api_key": API_KEY, "base_url": server.url, "_env_file": None}
        options.update(overrides)
        made.append(CartesiaTTS(**options))
        return made[-1]

    yield make
    for tts in made:
        await tts.aclose()
