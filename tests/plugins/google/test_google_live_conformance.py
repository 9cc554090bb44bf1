"""The realtime conformance suite for GeminiLive (against the Live server), and both providers' registration."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence

import pytest
from gemini_live_server import API_KEY, OUT_RATE, LiveServer, LiveTurn

from vocalis import RealTimePipeline, make_plugin_manager
from vocalis.testing.conformance import RealtimeConformance, ScriptedReply, serve_in_thread
from vocalis_google import GeminiLive, GeminiLLM


@pytest.fixture
def backend() -> Iterator[LiveServer]:
    """The Live protocol server on its own thread; fails the check on a malformed
    client message or a socket the client left open."""
    with serve_in_thread(LiveServer()) as server:
        yield server

        async def closed() -> None:
            while any(not c.ws.closed for c in server.connections):
                await asyncio.sleep(0.01)

        asyncio.run(asyncio.wait_for(closed(), 10))  # bounded: the server sees the close frames
    assert server.problems == [], "the client sent messages the Live API refuses"


def live_turn(reply: ScriptedReply) -> LiveTurn:
    if reply.fail:
        return LiveTurn(error={"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"})
    calls = [reply.tool_call] if reply.tool_call else []
    return LiveTurn(reply=reply.text, tool_calls=calls, hold_after=2 if reply.hold else None)


class TestGeminiLiveConformance(RealtimeConformance):
    @pytest.fixture
    def model(self, backend: LiveServer) -> GeminiLive:
        return GeminiLive(_env_file=None, api_key=API_KEY, base_url=backend.url)

    @pytest.fixture
    def script(self, backend: LiveServer) -> Callable[[Sequence[ScriptedReply]], None]:
        def play(replies: Sequence[ScriptedReply]) -> None:
            backend.turns = [live_turn(reply) for reply in replies]

        return play

    @pytest.fixture
    def audio_received(self, backend: LiveServer) -> Callable[[], float]:
        return lambda: sum(connection.audio_ms for connection in backend.connections) / 1000


def test_registered_as_google_and_gemini(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_REALTIME_GOOGLE_VOICE", "Charon")
    registry = make_plugin_manager().registry
    pipeline = RealTimePipeline("gemini", registry=registry)
    assert isinstance(pipeline.model, GeminiLive)
    assert pipeline.model.settings.voice == "Charon" and pipeline.model.label == "realtime:google"
    assert pipeline.describe() == {
        "realtime": "realtime:google",
        "model": "gemini-2.5-flash-native-audio-preview-12-2025",
    }
    llm = registry.create("llm", "gemini")
    assert isinstance(llm, GeminiLLM) and llm.label == "llm:google"


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_LLM_GOOGLE_API_KEY", "AIza-from-env-00000000000000")
    monkeypatch.setenv("VOCALIS_LLM_GOOGLE_MODEL", "gemini-2.5-flash-lite")
    monkeypatch.setenv("VOCALIS_LLM_GOOGLE_THINKING_BUDGET", "0")
    llm = GeminiLLM(_env_file=None)
    assert llm.settings.model == "gemini-2.5-flash-lite" and llm.settings.thinking_budget == 0
    assert llm.settings.api_key is not None and "AIza-from-env" not in repr(llm)
    with pytest.raises(ValueError, match="scheme"):
        GeminiLive(_env_file=None, base_url="example.invalid")


def test_one_thinking_setting_of_the_two_the_api_takes() -> None:
    live = GeminiLive(_env_file=None, api_key="AIza-conformance-0000000000000", thinking_level="minimal")
    assert live.setup_message("")["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "minimal"}
    for cls in (GeminiLLM, GeminiLive):
        with pytest.raises(ValueError, match="not both"):
            cls(_env_file=None, thinking_budget=0, thinking_level="low")


def test_it_declares_both_audio_rates() -> None:
    """It takes 16 kHz and speaks at 24 kHz: the contract's ``output_sample_rate`` says so."""
    assert (GeminiLive.sample_rate, GeminiLive.output_sample_rate) == (16_000, OUT_RATE)
