"""Data channel messages, settings and registration."""

from __future__ import annotations

import json

import pytest

from vocalis.cli.serve_cmd import serving_transports
from vocalis.observability.metrics import TTSMetrics, TurnMetrics
from vocalis.plugin.manager import make_plugin_manager
from vocalis.states import AgentState
from vocalis_webrtc import WebRTCTransport
from vocalis_webrtc.messages import close_message, encode, event_message, parse_client_message
from vocalis_webrtc.transport import browser_ice_servers, ice_servers


def test_events_become_typed_json_objects() -> None:
    message = event_message("agent_state_changed", {"state": AgentState.SPEAKING, "old_state": AgentState.THINKING})
    assert message == {"type": "agent_state_changed", "state": "speaking", "old_state": "thinking"}
    speech = event_message("on_speech_in", {"text": "hello", "is_final": False, "language": None})
    assert json.loads(encode(speech)) == {
        "type": "on_speech_in",
        "text": "hello",
        "is_final": False,
        "language": None,
    }


def test_metrics_carry_the_turn_latency_at_the_top() -> None:
    metrics = TurnMetrics(turn=2, speech_id="s1", source="user_turn", user_speech_ended_at=1.0, first_audio_at=1.85)
    metrics.tts = TTSMetrics(provider="tts:fake", model=None, ttfb=float("nan"))
    metrics.finish()
    message = json.loads(encode(event_message("metrics_collected", {"metrics": metrics})))
    assert message["type"] == "metrics_collected"
    assert message["turn"] == 2
    assert message["e2e_latency"] == pytest.approx(0.85)
    assert message["metrics"]["speech_id"] == "s1"
    assert message["metrics"]["tts"]["ttfb"] is None  # NaN is not JSON


def test_odd_payload_values_cannot_break_the_channel() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    message = event_message("function_call", {"output": Opaque(), "arguments": {"a": (1, 2)}, "type": "spoof"})
    assert message == {"type": "function_call", "output": "opaque", "arguments": {"a": [1, 2]}}
    deep: dict = {}
    cursor = deep
    for _ in range(20):
        cursor["next"] = {}
        cursor = cursor["next"]
    encode(event_message("error", {"detail": deep}))  # bounded depth, still JSON


def test_client_messages_are_parsed_defensively() -> None:
    assert parse_client_message('{"type": "bye"}') == {"type": "bye"}
    for bad in ("", "not json", "[1]", '{"kind": "bye"}', b"\xff\xfe", '{"type": 3}'):
        assert parse_client_message(bad) is None
    assert close_message("idle") == {"type": "close", "reason": "idle"}


def test_no_ice_server_by_default() -> None:
    settings = WebRTCTransport.Settings(_env_file=None)
    # An explicit empty list: aiortc would otherwise use a public STUN server.
    assert ice_servers(settings) == [] and browser_ice_servers(settings) == []


def test_ice_servers_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "VOCALIS_TRANSPORT_WEBRTC_ICE_SERVERS",
        '["stun:stun.example.org:3478", "turn:turn.example.org:3478?transport=udp"]',
    )
    monkeypatch.setenv("VOCALIS_TRANSPORT_WEBRTC_ICE_USERNAME", "alice")
    monkeypatch.setenv("VOCALIS_TRANSPORT_WEBRTC_ICE_CREDENTIAL", "s3cret")
    settings = WebRTCTransport.Settings(_env_file=None)
    assert "s3cret" not in repr(settings)
    stun, turn = ice_servers(settings)
    assert (stun.urls, stun.username, stun.credential) == ("stun:stun.example.org:3478", None, None)
    assert (turn.username, turn.credential) == ("alice", "s3cret")
    assert browser_ice_servers(settings) == [
        {"urls": "stun:stun.example.org:3478"},
        {
            "urls": "turn:turn.example.org:3478?transport=udp",
            "username": "alice",
            "credential": "s3cret",
        },
    ]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        WebRTCTransport.Settings(connect_timeout=0, _env_file=None)


def test_vocalis_serve_finds_the_transport() -> None:
    registry = make_plugin_manager().registry
    assert WebRTCTransport in serving_transports(registry)
    assert registry.get("transport", "webrtc").cls is WebRTCTransport
