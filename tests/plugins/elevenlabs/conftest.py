"""Fixtures of the elevenlabs plugin's tests: the local protocol server and providers talking to it."""

from __future__ import annotations

import gc
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from elevenlabs_server import API_KEY, VOICE, ElevenLabsServer

from vocalis_elevenlabs import ElevenLabsTTS


@pytest.fixture(scope="session")
def _running_server() -> Iterator[ElevenLabsServer]:
    with ElevenLabsServer() as server:
        yield server


@pytest.fixture
def server(_running_server: ElevenLabsServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[ElevenLabsServer]:
    """The server, reset; the test fails if a request or message broke the API's rules."""
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    _running_server.reset()
    yield _running_server
    assert _running_server.violations == [], "malformed requests or messages were sent"


@pytest.fixture
async def make_tts(server: ElevenLabsServer) -> AsyncIterator[Callable[..., ElevenLabsTTS]]:
    """Build providers talking to the server; they are closed after the test.

    A provider used under another loop (the conformance suites run each
    check with ``asyncio.run``) keeps an HTTP session that loop can no
    longer close: it is dropped, quietly.
    """
    made: list[ElevenLabsTTS] = []

    def make(**overrides: Any) -> ElevenLabsTTS:
        options: dict[str, Any] = {"api_key": API_KEY, "base_url": server.url, "voice_id": VOICE, "_env_file": None}
        made.append(ElevenLabsTTS(**{**options, **overrides}))
        return made[-1]

    yield make
    for tts in made:
        await tts.aclose()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        made.clear()
        gc.collect()
