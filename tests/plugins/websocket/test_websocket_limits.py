"""Bounds on what a peer sends: field lengths, bad-message floods, garbage-only connections.

Each test is one probe that once got through: a 900 kB ``streamSid`` echoed
fifty times a second, a log line (and an error event) per bad message, a
connection sending only garbage kept open forever.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest
from ws_harness import (
    ACCOUNT_SID,
    STREAM_SID,
    TOKEN,
    Harness,
    captured_logs,
    pcm_client,
    silence_pcm,
    tone_pcm,
    twilio_call,
)

from vocalis_websocket import PCMWebSocketTransport, TwilioTransport


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def _start(stream_sid: str, call_sid: str, parameters: dict[str, Any]) -> str:
    body = {
        "accountSid": ACCOUNT_SID,
        "streamSid": stream_sid,
        "callSid": call_sid,
        "tracks": ["inbound"],
        "customParameters": parameters,
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    return json.dumps({"event": "start", "sequenceNumber": "1", "start": body})


def test_the_bounds_are_settings_with_documented_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    twilio: Any = TwilioTransport.Settings()
    assert (twilio.max_sid_chars, twilio.max_parameters, twilio.max_parameter_chars, twilio.max_mark_chars) == (
        64,
        32,
        256,
        64,
    )
    pcm: Any = PCMWebSocketTransport.Settings()
    assert pcm.max_text_chars == 4000
    for settings in (twilio, pcm):
        assert (settings.log_burst, settings.log_interval, settings.max_bad_messages) == (5, 10.0, 100)
        assert settings.open_timeout == 60.0
    monkeypatch.setenv("VOCALIS_TRANSPORT_TWILIO_MAX_SID_CHARS", "12")
    monkeypatch.setenv("VOCALIS_TRANSPORT_WEBSOCKET_MAX_BAD_MESSAGES", "7")
    assert TwilioTransport.Settings().max_sid_chars == 12  # type: ignore[attr-defined]
    assert PCMWebSocketTransport.Settings().max_bad_messages == 7  # type: ignore[attr-defined]


async def test_a_huge_stream_sid_refuses_the_call_with_one_short_log_line() -> None:
    async with Harness() as harness:
        call = await twilio_call(harness)
        with captured_logs("DEBUG") as lines:
            await call.ws.send_str(_start("MZ" + "a" * 900_000, "CA" + "0" * 32, {"token": TOKEN}))
            assert await call.wait_closed() == 1008
        assert "invalid streamSid" in call.close_reason and "64" in call.close_reason
        assert call.received == [] and harness.server.opened == 0
        assert len([line for line in lines if "streamSid" in line]) == 1
        assert max(len(line) for line in lines) < 500


async def test_a_shorter_limit_refuses_twilios_own_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_TRANSPORT_TWILIO_MAX_SID_CHARS", "20")
    async with Harness() as harness:
        call = await twilio_call(harness)
        await call.start({"token": TOKEN})  # a 34-character streamSid
        assert await call.wait_closed() == 1008
        assert "at most 20" in call.close_reason


async def test_oversized_call_fields_are_dropped_and_said_once() -> None:
    parameters: dict[str, Any] = {"token": TOKEN, **{f"p{i}": f"v{i}" for i in range(40)}}
    parameters.update({"long": "x" * 257, "number": 5, "k" * 257: "v"})
    async with Harness() as harness:
        call = await twilio_call(harness)
        with captured_logs() as lines:
            await call.ws.send_str(_start(STREAM_SID, "CA" + "1" * 100, parameters))
            await asyncio.wait_for(harness.agent_made.wait(), 10)
            transport = harness.session().transport
            assert transport.call_sid == ""
            assert transport.custom_parameters == {f"p{i}": f"v{i}" for i in range(32)}
            await call.stop()
            assert await call.wait_closed() == 1000
        assert len([line for line in lines if "callSid" in line]) == 1
        dropped = [line for line in lines if "custom parameter" in line]
        assert len(dropped) == 1 and "dropped 11 " in dropped[0]


async def test_marks_and_keys_that_are_not_are_reported_not_kept() -> None:
    async with Harness() as harness:
        call = await twilio_call(harness)
        await call.start({"token": TOKEN})
        await asyncio.wait_for(harness.agent_made.wait(), 10)
        session = harness.session()
        errors: list[dict[str, Any]] = []
        session.on("error", errors.append)
        await call.send("mark", mark={"name": "m" * 65})
        await call.send("mark", mark={"name": "m" * 64})
        await call.send("dtmf", dtmf={"track": "inbound_track", "digit": "5" * 1000})
        await call.send("dtmf", dtmf={"track": "inbound_track", "digit": "#"})
        await _until(lambda: session.transport.dtmf == ["#"])
        assert session.transport.marks_played == ["m" * 64]
        assert [e["source"] for e in errors] == ["transport:twilio"] * 2
        assert "1 to 64 characters" in errors[0]["message"] and "key" in errors[1]["message"]
        await call.stop()
        assert await call.wait_closed() == 1000


async def test_a_text_longer_than_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async with Harness() as harness:
        client = await pcm_client(harness)
        await client.send_json({"type": "text", "text": "a" * 4001})
        await client.wait_for(lambda: bool(client.named("error")))
        assert "longer than 4000 characters" in client.named("error")[0]["message"]
        await client.aclose()
    monkeypatch.setenv("VOCALIS_TRANSPORT_WEBSOCKET_MAX_TEXT_CHARS", "10")
    async with Harness() as harness:
        client = await pcm_client(harness)
        await client.send_json({"type": "text", "text": "01234567890"})
        await client.send_json({"type": "text", "text": "0123456789"})
        await client.wait_for(lambda: bool(client.named("user_turn")))
        assert [e["text"] for e in client.named("user_turn")] == ["0123456789"]
        assert len(client.named("error")) == 1 and "longer than 10" in client.named("error")[0]["message"]
        assert harness.agents[0].chat_context.messages("user")[0].content == "0123456789"
        await client.aclose()


async def test_a_flood_of_bad_messages_is_logged_and_reported_a_few_times(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_TRANSPORT_WEBSOCKET_LOG_INTERVAL", "3600")  # one window for the whole test
    async with Harness() as harness:
        client = await pcm_client(harness)
        await client.wait_for(lambda: bool(client.named("ready")))
        with captured_logs("DEBUG") as lines:
            for _ in range(60):
                await client.ws.send_str("{bad")
            await client.send_json({"type": "text", "text": "hi"})  # read after all the bad ones
            await client.wait_for(lambda: bool(client.named("user_turn")))
            assert len(client.named("error")) == 5  # the default burst
            assert not client.closed.is_set()  # a good message came: not a garbage-only peer
            await client.aclose()
            await _until(lambda: harness.server.sessions == {})
        bad = [line for line in lines if "not JSON" in line]
        assert len(bad) == 5 and all(line.startswith("WARNING ") for line in bad)
        assert "WARNING transport:websocket: 55 more bad messages suppressed" in lines
        assert not [line for line in lines if line.startswith("ERROR")]


async def test_a_connection_sending_only_garbage_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_TRANSPORT_WEBSOCKET_MAX_BAD_MESSAGES", "10")
    async with Harness(answers=["Fine."]) as harness:
        client = await pcm_client(harness)
        for _ in range(10):
            await client.ws.send_str("[1]")
        await client.ws.send_bytes(bytes(320))  # a good message: the count starts again
        for _ in range(10):
            await client.ws.send_bytes(b"\x01")
        await client.send_json({"type": "text", "text": "still there?"})
        await client.wait_for(lambda: bool(client.named("agent_turn")))
        for _ in range(11):
            await client.ws.send_str("nonsense")
        assert await client.wait_closed() == 1008
        assert client.close_reason == "too many bad messages"
        assert client.named("close") == [{"type": "close", "reason": "too many bad messages"}]
        await _until(lambda: harness.server.sessions == {})


async def test_a_twilio_connection_sending_only_garbage_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_TRANSPORT_TWILIO_MAX_BAD_MESSAGES", "5")
    async with Harness(["hello"], ["Hi."]) as harness:
        before = await twilio_call(harness)
        for _ in range(6):  # no start among them
            await before.ws.send_str("{}")
        assert await before.wait_closed() == 1008
        assert "start" in before.close_reason

        call = await twilio_call(harness)
        await call.start({"token": TOKEN})
        await asyncio.wait_for(harness.agent_made.wait(), 10)
        for _ in range(5):
            await call.ws.send_bytes(b"\x00")
        await call.send_pcm(np.concatenate([tone_pcm(0.5, 8000), silence_pcm(0.6, 8000)]))
        await call.wait_for(lambda: len(call.marks) == 1)  # still answered
        for _ in range(6):
            await call.send("media", media={"track": "inbound", "payload": "!!"})
        assert await call.wait_closed() == 1008
        assert call.close_reason == "too many bad messages"
        assert call.violations == []
        assert harness.server.opened == 1
