"""The realtime conformance suite, run against the openai realtime provider and its protocol server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence

import pytest
from realtime_server import API_KEY, RealtimeServer, ServerTurn

from vocalis import RealTimePipeline, make_plugin_manager
from vocalis.testing.conformance import RealtimeConformance, ScriptedReply, serve_in_thread
from vocalis_openai.realtime import OpenAIRealtime


@pytest.fixture
def backend() -> Iterator[RealtimeServer]:
    """The Realtime protocol server on its own thread; fails the check on a malformed client event."""
    with serve_in_thread(RealtimeServer()) as server:
        yield server
    assert server.problems == [], "the client sent requests the protocol rejects"


def server_turn(reply: ScriptedReply) -> ServerTurn:
    if reply.fail:
        return ServerTurn(error="The server had an error processing your request.")
    calls = [(reply.tool_call[0], json.dumps(reply.tool_call[1]))] if reply.tool_call else []
    return ServerTurn(reply=reply.text, tool_calls=calls, hold_after=2 if reply.hold else None)


class TestOpenAIRealtimeConformance(RealtimeConformance):
    @pytest.fixture
    def model(self, backend: RealtimeServer) -> OpenAIRealtime:
        return OpenAIRealtime(_env_file=None, api_key=API_KEY, base_url=backend.base_url)

    @pytest.fixture
    def script(self, backend: RealtimeServer) -> Callable[[Sequence[ScriptedReply]], None]:
        def play(replies: Sequence[ScriptedReply]) -> None:
            backend.turns = [server_turn(reply) for reply in replies]

        return play

    @pytest.fixture
    def audio_received(self, backend: RealtimeServer) -> Callable[[], float]:
        return lambda: sum(connection.audio_ms for connection in backend.connections) / 1000


def test_registered_as_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_REALTIME_OPENAI_VOICE", "alloy")
    pipeline = RealTimePipeline("openai", registry=make_plugin_manager().registry)
    assert isinstance(pipeline.model, OpenAIRealtime)
    assert pipeline.model.settings.voice == "alloy" and pipeline.model.label == "realtime:openai"
    assert pipeline.describe() == {"realtime": "realtime:openai", "model": "gpt-realtime"}
