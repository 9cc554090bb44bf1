"""Fixtures of the anthropic plugin's tests: the local Messages API server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from anthropic_messages_server import API_KEY, MessagesServer

from vocalis_anthropic import AnthropicLLM

# Variables the SDK reads that would change what the tests send.
_SDK_ENV = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_CUSTOM_HEADERS",
    "ANTHROPIC_PROFILE",
    "ANTHROPIC_CONFIG_DIR",
    "ANTHROPIC_IDENTITY_TOKEN",
    "ANTHROPIC_IDENTITY_TOKEN_FILE",
    "ANTHROPIC_FEDERATION_RULE_ID",
    "ANTHROPIC_ORGANIZATION_ID",
)


@pytest.fixture(scope="session")
def _running_server() -> Iterator[MessagesServer]:
    with MessagesServer() as server:
        yield server


@pytest.fixture
def server(_running_server: MessagesServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[MessagesServer]:
    """The server, reset; the test fails if a request broke the API's rules."""
    for name in _SDK_ENV:
        monkeypatch.delenv(name, raising=False)
    _running_server.reset()
    yield _running_server
    assert _running_server.violations == [], "malformed requests were sent"


@pytest.fixture
async def make_llm(server: MessagesServer) -> AsyncIterator[Callable[..., AnthropicLLM]]:
    """Build providers talking to the server, without retries unless asked.

    Every provider made is closed after the test (closing twice is fine).
    """
    made: list[AnthropicLLM] = []

    def make(**overrides: Any) -> AnthropicLLM:
        options: dict[str, Any] = {"api_key": API_KEY, "base_url": server.url, "max_retries": 0}
        options.update(overrides)
        made.append(AnthropicLLM(_env_file=None, **options))
        return made[-1]

    yield make
    for llm in made:
        await llm.aclose()
