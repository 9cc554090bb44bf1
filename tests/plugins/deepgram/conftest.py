"""Fixtures of the deepgram plugin's tests: the two protocol servers and providers aimed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from deepgram_helpers import stt_for, tts_for
from deepgram_listen_server import ListenServer
from deepgram_speak_server import SpeakServer

from vocalis_deepgram import DeepgramSTT, DeepgramTTS


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DEEPGRAM_API_KEY", "VOCALIS_STT_DEEPGRAM_API_KEY", "VOCALIS_TTS_DEEPGRAM_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def _listen_server() -> Iterator[ListenServer]:
    with ListenServer() as server:
        yield server


@pytest.fixture(scope="session")
def _speak_server() -> Iterator[SpeakServer]:
    with SpeakServer() as server:
        yield server


@pytest.fixture
def listen(_listen_server: ListenServer) -> Iterator[ListenServer]:
    """The listen server, reset; the test fails if a request broke the API's rules."""
    _listen_server.reset()
    yield _listen_server
    assert _listen_server.violations == [], "malformed requests or messages were sent"


@pytest.fixture
def speak(_speak_server: SpeakServer) -> Iterator[SpeakServer]:
    """The speak server, reset; the test fails if a request broke the API's rules."""
    _speak_server.reset()
    yield _speak_server
    assert _speak_server.violations == [], "malformed requests or messages were sent"


@pytest.fixture
async def make_stt(listen: ListenServer) -> AsyncIterator[Callable[..., DeepgramSTT]]:
    """Build STTs aimed at the listen server; all are closed after the test."""
    made: list[DeepgramSTT] = []

    def make(**overrides: Any) -> DeepgramSTT:
        made.append(stt_for(listen, **overrides))
        return made[-1]

    yield make
    for stt in made:
        await stt.aclose()


@pytest.fixture
async def make_tts(speak: SpeakServer) -> AsyncIterator[Callable[..., DeepgramTTS]]:
    """Build TTSs aimed at the speak server; all are closed after the test."""
    made: list[DeepgramTTS] = []

    def make(**overrides: Any) -> DeepgramTTS:
        made.append(tts_for(speak, **overrides))
        return made[-1]

    yield make
    for tts in made:
        await tts.aclose()
