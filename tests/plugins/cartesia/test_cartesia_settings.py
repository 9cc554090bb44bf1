"""Settings, URLs, registration, error mapping and the sentence assembler, without a server."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from vocalis.providers.base import ErrorKind
from vocalis_cartesia import CartesiaTTS, WordTimestamp
from vocalis_cartesia.errors import close_status, message_error
from vocalis_cartesia.request import endpoint
from vocalis_cartesia.segments import SegmentAssembler


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_TTS_CARTESIA_API_KEY", "sk_car_from-env-1234567")
    monkeypatch.setenv("VOCALIS_TTS_CARTESIA_MODEL_ID", "sonic-2")
    monkeypatch.setenv("VOCALIS_TTS_CARTESIA_VOICE_ID", "voice-x")
    monkeypatch.setenv("VOCALIS_TTS_CARTESIA_SAMPLE_RATE", "16000")
    monkeypatch.setenv("VOCALIS_TTS_CARTESIA_CARTESIA_VERSION", "2026-03-01")
    monkeypatch.setenv("VOCALIS_TTS_CARTESIA_GENERATION_CONFIG", '{"speed": 1.2, "emotion": "calm"}')
    tts = CartesiaTTS(_env_file=None)
    s = tts.settings
    assert isinstance(s.api_key, SecretStr) and s.api_key.get_secret_value() == "sk_car_from-env-1234567"
    assert (s.model_id, s.voice_id, s.sample_rate, s.cartesia_version) == ("sonic-2", "voice-x", 16_000, "2026-03-01")
    assert s.generation_config == {"speed": 1.2, "emotion": "calm"}
    assert tts.sample_rate == 16_000 and CartesiaTTS.sample_rate == 24_000
    assert tts.model_name == "sonic-2" and tts.label == "tts:cartesia"
    assert "sk_car_from-env-1234567" not in repr(tts)


@pytest.mark.parametrize(
    "bad",
    [
        {"sample_rate": 12_345},
        {"base_url": "api.cartesia.ai"},
        {"cartesia_version": "latest"},
        {"max_buffer_delay_ms": 9000},
        {"frame_ms": 5},
    ],
)
def test_bad_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CartesiaTTS(_env_file=None, **bad)


def test_endpoints_keep_a_gateways_path_and_query() -> None:
    assert endpoint("https://api.cartesia.ai", "/tts/bytes", websocket=False) == "https://api.cartesia.ai/tts/bytes"
    assert (
        endpoint("https://gw.example/v1/cartesia/?team=a", "/tts/websocket", websocket=True, query={"x": "1"})
        == "wss://gw.example/v1/cartesia/tts/websocket?team=a&x=1"
    )
    assert endpoint("ws://127.0.0.1:80", "/tts/bytes", websocket=False) == "http://127.0.0.1:80/tts/bytes"


def test_plugin_registers_the_provider() -> None:
    from importlib.metadata import entry_points

    from vocalis_cartesia import plugin

    registered: list[tuple[type, dict[str, Any]]] = []
    plugin.vocalis_register_tts(lambda cls, **kw: registered.append((cls, kw)))  # type: ignore[arg-type]
    assert registered == [(CartesiaTTS, {})]
    (ep,) = [ep for ep in entry_points(group="vocalis") if ep.name == "cartesia"]
    assert ep.value == "vocalis_cartesia.plugin"


def test_close_codes_and_error_messages() -> None:
    assert [close_status(c) for c in (4001, 4029, 4429, 4500, 1011, 4999)] == [401, 429, 429, 500, None, None]
    tts = CartesiaTTS(_env_file=None)
    new_style = {"type": "error", "title": "Invalid voice", "message": "no such voice", "error_code": "voice_not_found"}
    error = message_error(tts, {**new_style, "status_code": 404})
    assert (error.kind, error.recoverable) == (ErrorKind.BAD_REQUEST, False)
    assert "voice_not_found" in str(error) and "no such voice" in str(error)
    error = message_error(tts, {"type": "error", "error_code": "concurrency_limit_exceeded"})
    assert (error.kind, error.recoverable) == (ErrorKind.RATE_LIMIT, True)


def test_the_assembler_tags_sentences_and_holds_one_frame() -> None:
    asm = SegmentAssembler(8000, 20)  # 320-byte frames
    asm.add_sentence("One.", "c1", 1)
    asm.add_sentence("Two.", "c1", 2)
    out = asm.audio("c1", 1, b"\1" * 700)  # two whole frames; the second is held
    assert [(a.text, len(a.frame.data), a.segment_end) for a in out] == [("One.", 320, False)]
    out = asm.audio("c1", 2, b"\2" * 320)  # the next sentence: the first ends (its 60 odd bytes too)
    assert [(a.text, len(a.frame.data), a.segment_end) for a in out] == [("", 320, False), ("", 60, True)]
    out = asm.end_sentence("c1", 2) + asm.finish()
    assert [(a.text, len(a.frame.data), a.segment_end) for a in out] == [("Two.", 320, True)]
    asm.add_timestamps("c1", 2, ["Two"], [0.1], [0.3])
    assert asm.timestamps == [WordTimestamp("Two", 0.1, 0.3, 1)]


def test_messages_without_a_type_are_recognised() -> None:
    from vocalis_cartesia.stream import is_last, message_kind

    shapes = [
        ({"type": "chunk", "data": "AA==", "done": False}, "chunk", False),
        ({"data": "AA==", "done": False, "status_code": 206}, "chunk", False),
        ({"data": "", "done": True, "status_code": 206}, "chunk", True),
        ({"error": "Invalid voice", "status_code": 400, "done": True}, "error", True),
        ({"flush_done": True, "flush_id": 1, "done": False}, "flush_done", False),
        ({"type": "flush_done", "flush_id": 1, "done": True}, "flush_done", False),
        ({"done": True, "status_code": 206}, "done", True),
    ]
    for message, kind, last in shapes:
        assert (message_kind(message), is_last(message_kind(message), message)) == (kind, last), message
