"""The raw-PCM /ws endpoint: audio both ways, JSON events and control, limits."""

from __future__ import annotations

import aiohttp
import numpy as np
import pytest
from ws_harness import (
    TOKEN,
    Harness,
    dominant_frequency,
    fake_tts_seconds,
    other_tasks,
    pcm_client,
    silence_pcm,
    tone_pcm,
)


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
async def test_a_spoken_turn_is_answered_at_the_clients_rate(rate: int) -> None:
    async with Harness(["book a table for two"], ["Table booked."]) as harness:
        client = await pcm_client(harness, sample_rate=rate)
        await client.wait_for(lambda: bool(client.named("ready")))
        ready = client.events[0]
        assert ready == {"type": "ready", "session_id": harness.session().id, "sample_rate": rate}
        await client.send_pcm(np.concatenate([tone_pcm(0.5, rate), silence_pcm(0.6, rate)]), rate)
        await client.wait_for(lambda: bool(client.named("agent_turn")))

        assert client.named("user_turn") == [{"type": "user_turn", "text": "book a table for two"}]
        assert client.named("on_speech_in")[-1]["is_final"] is True
        turn = client.named("agent_turn")[0]
        assert turn["text"] == "Table booked." and turn["interrupted"] is False
        assert {"state": "speaking", "old_state": "thinking"} in [
            {k: e[k] for k in ("state", "old_state")} for e in client.named("agent_state_changed")
        ]
        metrics = client.named("metrics_collected")
        assert metrics and isinstance(metrics[0]["metrics"], dict) and metrics[0]["metrics"]["turn"] == 1

        audio = client.pcm()
        expected = fake_tts_seconds(harness.pipelines[-1].tts)
        assert abs(len(audio) / rate - expected) < 0.03
        assert abs(dominant_frequency(audio, rate) - 440.0) <= 15
        assert set(client.binary_sizes[:-1]) == {2 * rate // 50}  # 20 ms messages

        await client.send_json({"type": "end"})
        assert await client.wait_closed() == 1000
        assert client.named("close") == [{"type": "close", "reason": "hangup"}]
        assert harness.session().close_reason == "hangup"
    assert other_tasks() == []


async def test_typed_text_is_a_turn_and_barge_in_clears_the_client() -> None:
    long = "This answer goes on for quite a while so that there is time to interrupt it."
    async with Harness(["no wait stop"], [long, "Sure."]) as harness:
        client = await pcm_client(harness)
        await client.send_json({"type": "text", "text": "tell me a story"})
        await client.wait_for(lambda: any(e["state"] == "speaking" for e in client.named("agent_state_changed")))
        assert client.named("user_turn") == [{"type": "user_turn", "text": "tell me a story"}]
        await client.send_pcm(tone_pcm(0.8, 16000), 16000, realtime=True)
        await client.wait_for(lambda: bool(client.named("clear")))
        assert client.named("clear") == [{"type": "clear"}]
        await client.send_pcm(silence_pcm(0.6, 16000), 16000)
        await client.wait_for(lambda: len(client.named("agent_turn")) == 2)
        first, second = client.named("agent_turn")
        assert first["interrupted"] is True and second["text"] == "Sure."
        llm = harness.pipelines[-1].llm
        assert llm.requests[0].chat_ctx.last_message("user").content == "tell me a story"
        await client.aclose()


async def test_bad_messages_give_error_events_and_the_session_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_TRANSPORT_WEBSOCKET_LOG_BURST", "10")  # all six reported (the default is 5)
    async with Harness() as harness:
        client = await pcm_client(harness)
        await client.ws.send_bytes(b"\x01\x02\x03")  # odd length: not 16-bit samples
        await client.ws.send_str("{oops")
        await client.ws.send_str('"just a string"')
        await client.send_json({"type": "dance"})
        await client.send_json({"type": "text", "text": "   "})
        await client.send_json({"type": "text", "text": 42})
        await client.wait_for(lambda: len(client.named("error")) == 6)
        errors = client.named("error")
        assert "3 bytes is not 16-bit PCM" in errors[0]["message"]
        assert [e["source"] for e in errors] == ["websocket"] * 6
        assert "not JSON" in errors[1]["message"] and "dance" in errors[3]["message"]
        assert all(e["recoverable"] is True for e in errors)

        await client.send_json({"type": "text", "text": "hi"})
        await client.wait_for(lambda: bool(client.named("agent_turn")))
        assert client.named("agent_turn")[0]["text"] == "You said hi."
        await client.aclose()


async def test_the_token_is_required() -> None:
    async with Harness() as harness:
        for token in (None, "wrong"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await pcm_client(harness, token=token)
            assert info.value.status == 401
        ws = await harness.http.ws_connect(harness.url("/ws"), headers={"Authorization": f"Bearer {TOKEN}"})
        await ws.close()
        assert harness.server.opened == 1


async def test_origins_are_checked() -> None:
    async with Harness(allowed_origins=("https://app.example.com",)) as harness:
        url = harness.url("/ws", token=TOKEN)
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await harness.http.ws_connect(url, headers={"Origin": "https://evil.example"})
        assert info.value.status == 403
        for origin in ("https://app.example.com", f"http://127.0.0.1:{harness.port}"):
            ws = await harness.http.ws_connect(url, headers={"Origin": origin})
            await ws.close()
        assert harness.server.opened == 2


@pytest.mark.parametrize("rate", ["7999", "48001", "abc", "16000.5"])
async def test_a_bad_sample_rate_is_refused(rate: str) -> None:
    async with Harness() as harness:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await pcm_client(harness, sample_rate=rate)
        assert info.value.status == 400
        assert harness.server.opened == 0


async def test_a_full_server_says_try_again_later() -> None:
    async with Harness(max_sessions=2) as harness:
        clients = [await pcm_client(harness) for _ in range(2)]
        for client in clients:
            await client.wait_for(lambda c=client: bool(c.named("ready")))
        refused = await pcm_client(harness)
        assert await refused.wait_closed() == 1013
        assert refused.close_reason.startswith("try again later")
        assert refused.events == []
        await clients[0].send_json({"type": "end"})
        await clients[0].wait_closed()
        again = await pcm_client(harness)
        await again.wait_for(lambda: bool(again.named("ready")))
        assert harness.server.opened == 3


async def test_a_message_over_the_size_limit_ends_the_session() -> None:
    async with Harness(max_message_bytes=1000) as harness:
        client = await pcm_client(harness)
        await client.wait_for(lambda: bool(client.named("ready")))
        await client.ws.send_bytes(bytes(2000))
        assert await client.wait_closed() == 1009
        session = harness.session()
        await session._close_task
        assert session.close_reason == "hangup"


async def test_shutdown_and_idle_close_tell_the_client_why() -> None:
    async with Harness(idle_timeout=0.3) as harness:
        client = await pcm_client(harness)
        assert await client.wait_closed() == 1000
        assert client.named("close") == [{"type": "close", "reason": "idle"}]
    async with Harness() as harness:
        client = await pcm_client(harness)
        await client.wait_for(lambda: bool(client.named("ready")))
        await harness.server.drain(timeout=0)
        assert await client.wait_closed() == 1001
        assert client.named("close") == [{"type": "close", "reason": "shutdown"}]
        assert client.close_reason == "shutdown"
    assert other_tasks() == []
