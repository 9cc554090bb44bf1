"""The /twilio endpoint against a client that plays Twilio's side of Media Streams."""

from __future__ import annotations

import numpy as np
import pytest
from ws_harness import (
    CALL_SID,
    STREAM_SID,
    TOKEN,
    Harness,
    dominant_frequency,
    fake_tts_seconds,
    other_tasks,
    silence_pcm,
    tone_pcm,
    twilio_call,
)

QUESTION = "what is the weather in boston"
ANSWER = "It is sunny in Boston today, with a light breeze from the sea."


async def test_a_call_is_answered_barged_in_on_and_hung_up() -> None:
    async with Harness([QUESTION, "stop please"], [ANSWER, "Okay."]) as harness:
        call = await twilio_call(harness)
        await call.connected()
        await call.start({"token": TOKEN, "caller": "+15550100"})
        await harness.agent_made.wait()
        session = harness.session()
        transport = session.transport
        await call.send_pcm(np.concatenate([tone_pcm(0.6, 8000), silence_pcm(0.6, 8000)]))

        # The answer comes back as μ-law media, then a mark ends the segment.
        await call.wait_for(lambda: len(call.marks) == 1)
        tts = harness.pipelines[-1].tts
        assert " ".join(tts.spoken) == ANSWER
        answer = call.pcm()
        expected = fake_tts_seconds(tts)
        assert abs(len(answer) / 8000 - expected) < 0.03, (len(answer) / 8000, expected)
        # FakeTTS repeats a 20 ms frame of a 440 Hz tone: its spectrum peaks on the 50 Hz grid nearest 440.
        assert abs(dominant_frequency(answer, 8000) - 440.0) <= 15
        assert int(np.abs(answer).max()) > 5000
        media = [m for m in call.received if m["event"] == "media"]
        assert all(len(m["media"]["payload"]) == 216 for m in media[:-1])  # 160 bytes = 20 ms
        assert call.received[-1] == {"event": "mark", "streamSid": STREAM_SID, "mark": {"name": call.marks[0]}}

        # The mark round trip: Twilio's echo says the segment played.
        await call.wait_for(lambda: transport.marks_played == call.marks)
        assert transport.call_sid == CALL_SID and transport.custom_parameters == {"caller": "+15550100"}

        # The agent is still talking (about 3 s of audio): the caller talks over it.
        assert session.agent_state.value == "speaking"
        await call.send_pcm(tone_pcm(0.8, 8000), realtime=True)
        await call.wait_for(lambda: call.clears >= 1)
        clear_at = next(i for i, m in enumerate(call.received) if m["event"] == "clear")
        assert call.received[clear_at] == {"event": "clear", "streamSid": STREAM_SID}
        await call.send_pcm(silence_pcm(0.6, 8000))
        await call.wait_for(lambda: any(t["text"] == "stop please" for t in _user_turns(session)))

        await call.stop()
        assert await call.wait_closed() == 1000
        assert session.closed and session.close_reason == "hangup"
        assert call.violations == []
        assert transport.frames_in > 0
        assert harness.server.sessions == {}
    assert other_tasks() == []


def _user_turns(session) -> list[dict]:
    return [{"text": m.content} for m in session.agent.chat_context.messages("user")]


async def test_the_token_may_come_in_the_query() -> None:
    async with Harness() as harness:
        call = await twilio_call(harness, query_token=TOKEN)
        await call.connected()
        await call.start()
        await harness.agent_made.wait()
        await call.stop()
        assert await call.wait_closed() == 1000
        assert harness.server.opened == 1


@pytest.mark.parametrize(
    ("query_token", "parameters"),
    [(None, {}), (None, {"token": "wrong"}), ("wrong", {}), ("wrong", {"token": ""})],
    ids=["missing", "wrong-parameter", "wrong-query", "empty-parameter"],
)
async def test_a_call_without_the_right_token_is_refused(query_token, parameters) -> None:
    async with Harness() as harness:
        call = await twilio_call(harness, query_token=query_token)
        await call.connected()
        await call.start(parameters)
        assert await call.wait_closed() == 1008
        assert "token" in call.close_reason
        assert harness.server.opened == 0 and harness.agents == []


async def test_a_call_that_never_starts_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_TRANSPORT_TWILIO_START_TIMEOUT", "0.2")
    async with Harness() as harness:
        call = await twilio_call(harness, query_token=TOKEN)
        await call.connected()
        assert await call.wait_closed() == 1008
        assert harness.server.opened == 0


async def test_an_unsupported_media_format_is_refused() -> None:
    async with Harness() as harness:
        call = await twilio_call(harness)
        await call.start({"token": TOKEN}, encoding="audio/x-alaw")
        assert await call.wait_closed() == 1003
        assert harness.server.opened == 0


async def test_a_foreign_origin_is_forbidden() -> None:
    async with Harness() as harness:
        import aiohttp

        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await harness.http.ws_connect(harness.url("/twilio"), headers={"Origin": "https://evil.example"})
        assert info.value.status == 403


async def test_a_full_server_refuses_the_next_call() -> None:
    async with Harness(max_sessions=1) as harness:
        first = await twilio_call(harness)
        await first.start({"token": TOKEN})
        await harness.agent_made.wait()
        second = await twilio_call(harness)
        await second.start({"token": TOKEN})
        assert await second.wait_closed() == 1013
        assert "try again later" in second.close_reason
        assert len(harness.server.sessions) == 1
        await first.stop()
        await first.wait_closed()
        # The place is free again.
        third = await twilio_call(harness)
        await third.start({"token": TOKEN})
        await third.stop()
        assert await third.wait_closed() == 1000
        assert harness.server.opened == 2


async def test_bad_messages_are_ignored_and_the_call_goes_on() -> None:
    async with Harness([QUESTION], ["Sure."]) as harness:
        call = await twilio_call(harness)
        await call.connected()
        await call.start({"token": TOKEN})
        await harness.agent_made.wait()
        transport = harness.session().transport
        await call.ws.send_str("{not json")
        await call.ws.send_str("[1, 2]")
        await call.ws.send_bytes(b"\x00\x01")
        await call.send("media", media={"track": "inbound", "payload": "!!not base64!!"})
        await call.send("media", media={"track": "inbound"})
        await call.send("media", media="nonsense")
        await call.send("media", media={"track": "outbound", "payload": "AAAA"})  # not the caller's audio
        await call.send("unknown-event", whatever=1)
        await call.send("dtmf", dtmf={"track": "inbound_track", "digit": "5"})
        await call.send("mark", mark={"name": "not-ours"})
        await call.send_pcm(np.concatenate([tone_pcm(0.5, 8000), silence_pcm(0.6, 8000)]))
        await call.wait_for(lambda: len(call.marks) == 1)
        assert transport.dtmf == ["5"]
        assert "not-ours" in transport.marks_played
        assert harness.pipelines[-1].tts.spoken == ["Sure."]
        await call.stop()
        assert await call.wait_closed() == 1000
        assert call.violations == []


async def test_an_idle_call_is_closed_by_the_server() -> None:
    async with Harness(idle_timeout=0.3) as harness:
        call = await twilio_call(harness)
        await call.start({"token": TOKEN})
        await harness.agent_made.wait()
        assert await call.wait_closed() == 1000
        assert call.close_reason == "idle"
        assert harness.session().close_reason == "idle"


async def test_a_message_over_the_size_limit_ends_the_call() -> None:
    async with Harness(max_message_bytes=4096) as harness:
        call = await twilio_call(harness)
        await call.start({"token": TOKEN})
        await harness.agent_made.wait()
        await call.send_pcm(silence_pcm(0.1, 8000))
        await call.send("media", media={"track": "inbound", "payload": "A" * 8000})
        assert await call.wait_closed() == 1009
        session = harness.session()
        await session._close_task  # the handler closes the session as a hang-up
        assert session.close_reason == "hangup"
