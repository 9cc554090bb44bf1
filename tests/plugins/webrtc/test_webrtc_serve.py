"""The WebRTC transport served in-process, with an aiortc client as the browser.

Speech is a tone (the fake VAD and STT take loud audio for speech), the
agent's voice is the fake TTS's tone; everything crosses a real peer
connection on this machine (Opus, DTLS, SCTP).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from webrtc_helpers import Client, ScriptedMic, Served, connect, fake_pipeline, offer, serving

from vocalis.session.agent_session import AgentSession


def only_session(served: Served) -> AgentSession:
    assert len(served.server.sessions) == 1, served.server.sessions
    return next(iter(served.server.sessions))


def closed_reason(session: AgentSession) -> asyncio.Future[str]:
    """A future holding the reason the session closes with."""
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    session.on("close", lambda payload: future.done() or future.set_result(payload["reason"]))
    return future


async def wait_no_sessions(served: Served, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while served.server.sessions:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout)


def leftover_tasks(before: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t not in before and t is not asyncio.current_task() and not t.done()]


async def test_a_turn_crosses_the_peer_connection_both_ways() -> None:
    before = set(asyncio.all_tasks())
    async with serving() as served:
        client = await connect(served)
        session = only_session(served)
        reason = closed_reason(session)
        transport = session.transport
        await client.wait_for(lambda: "agent_state_changed" in client.types(), timeout=10)

        client.mic.say(0.8)  # the user speaks
        await client.wait_for(lambda: bool(client.named("agent_turn")), timeout=15)
        await client.wait_for(lambda: bool(client.named("metrics_collected")), timeout=5)

        # User audio reached the session, and its transcript came back.
        assert [m["text"] for m in client.named("user_turn")] == ["what is the weather in boston"]
        assert any(m["is_final"] for m in client.named("on_speech_in"))
        # The agent's state, words and latency reached the page.
        states = [m["state"] for m in client.named("agent_state_changed")]
        assert "thinking" in states and "speaking" in states, states
        assert "It is sunny in Boston." in " ".join(m["text"] for m in client.named("on_speech_out"))
        assert client.named("agent_turn")[0]["text"] == "It is sunny in Boston."
        metrics = client.named("metrics_collected")[0]
        assert metrics["e2e_latency"] is not None and 0 < metrics["e2e_latency"] < 5
        assert metrics["metrics"]["turn"] == metrics["turn"] == 1
        # The agent's voice (a loud tone) reached the client as audio frames.
        await client.wait_for(lambda: client.loud_frames >= 10, timeout=5)

        # The page leaving with "bye" ends the session as a hangup.
        client.channel.send('{"type": "bye"}')
        assert await asyncio.wait_for(reason, 5) == "hangup"
        await wait_no_sessions(served)
        assert transport.pc.connectionState == "closed"
        assert transport.track.readyState == "ended"
        assert not transport._tasks
        await client.close()
    assert leftover_tasks(before) == []


async def test_closing_the_peer_connection_ends_the_session() -> None:
    before = set(asyncio.all_tasks())
    async with serving() as served:
        client = await connect(served)
        session = only_session(served)
        reason = closed_reason(session)
        await client.wait_for(lambda: "agent_state_changed" in client.types(), timeout=10)
        await client.close()  # no bye: the browser tab just went away
        assert await asyncio.wait_for(reason, 10) == "hangup"
        await wait_no_sessions(served)
        assert session.transport.pc.connectionState == "closed"
        assert not session.transport._tasks
    assert leftover_tasks(before) == []


async def test_an_idle_session_is_closed_and_the_page_told_why() -> None:
    before = set(asyncio.all_tasks())
    async with serving(idle_timeout=0.6) as served:
        client = await connect(served)
        session = only_session(served)
        reason = closed_reason(session)
        await client.wait_for(lambda: bool(client.named("close")), timeout=10)
        assert client.named("close") == [{"type": "close", "reason": "idle"}]
        assert await asyncio.wait_for(reason, 5) == "idle"
        await wait_no_sessions(served)
        assert session.transport.pc.connectionState == "closed"
        await client.close()
    assert leftover_tasks(before) == []


async def test_shutdown_tells_the_page() -> None:
    async with serving() as served:
        client = await connect(served)
        await client.wait_for(lambda: "agent_state_changed" in client.types(), timeout=10)
        await served.server.drain(timeout=0)
        await client.wait_for(lambda: bool(client.named("close")), timeout=5)
        assert client.named("close")[-1]["reason"] == "shutdown"
        assert served.server.sessions == {}
        await client.close()


async def test_a_full_server_answers_503_and_frees_the_place_when_a_browser_leaves() -> None:
    async with serving(max_sessions=1) as served:
        first = await connect(served)
        refused_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        refused_pc.addTrack(ScriptedMic())
        refused_pc.createDataChannel("events")
        resp = await offer(served, refused_pc)
        assert resp.status == 503
        assert "full" in (await resp.json())["error"]
        await refused_pc.close()
        assert len(served.server.sessions) == 1

        first.channel.send('{"type": "bye"}')
        await wait_no_sessions(served)
        await first.close()
        second = await connect(served)  # the place is free again
        assert len(served.server.sessions) == 1
        await second.close()
        await wait_no_sessions(served)


async def _offer_pc() -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(ScriptedMic())
    pc.createDataChannel("events")
    return pc


async def test_requests_without_the_token_are_refused() -> None:
    async with serving() as served:
        pc = await _offer_pc()
        try:
            assert (await offer(served, pc, Accept="application/json")).status == 401
            assert (await offer(served, pc, Authorization="Bearer wrong")).status == 401
        finally:
            await pc.close()
        async with served.http.get(f"{served.url}/") as resp:
            assert resp.status == 401
        async with served.http.get(f"{served.url}/webrtc/config") as resp:
            assert resp.status == 401
        assert served.server.opened == 0


async def test_a_foreign_origin_is_refused() -> None:
    async with serving() as served:
        pc = await _offer_pc()
        try:
            resp = await offer(served, pc, **served.headers(Origin="https://evil.example"))
            assert resp.status == 403
        finally:
            await pc.close()
        assert served.server.opened == 0
        client = await connect(served, **served.headers(Origin=served.url))  # the page's own origin
        await client.close()
        await wait_no_sessions(served)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        '{"type": "answer", "sdp": "v=0"}',
        '{"type": "offer"}',
        '{"type": "offer", "sdp": "this is not SDP"}',
        '["offer"]',
    ],
)
async def test_a_bad_offer_is_a_400_and_frees_its_place(body: str) -> None:
    async with serving(max_sessions=1) as served:
        async with served.http.post(f"{served.url}/webrtc/offer", data=body, headers=served.headers()) as resp:
            assert resp.status == 400, await resp.text()
        assert served.server.sessions == {} and served.server._pending == 0
        client = await connect(served)  # the only place is still available
        await client.close()
        await wait_no_sessions(served)


async def test_an_offer_without_audio_is_refused() -> None:
    async with serving() as served:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.createDataChannel("events")
        try:
            resp = await offer(served, pc)
            assert resp.status == 400
            assert "audio" in (await resp.json())["error"]
        finally:
            await pc.close()
        assert served.server.sessions == {} and served.server._pending == 0


async def test_the_page_and_its_files_are_served() -> None:
    async with serving() as served:
        async with served.http.get(f"{served.url}/?token={served.token}") as resp:
            assert resp.status == 200
            assert resp.headers["Cache-Control"] == "no-store"
            page = await resp.text()
        assert 'id="toggle"' in page and "data-agent-state" in page
        async with served.http.get(f"{served.url}/webrtc/static/app.js") as resp:
            assert resp.status == 200  # public: no secret in it
            script = await resp.text()
        assert "window.vocalisPc" in script and 'createDataChannel("events")' in script
        async with served.http.get(f"{served.url}/webrtc/static/style.css") as resp:
            assert resp.status == 200
        async with served.http.get(f"{served.url}/webrtc/config", headers=served.headers()) as resp:
            assert await resp.json() == {"iceServers": []}


async def test_a_session_ends_when_the_browser_never_connects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOCALIS_TRANSPORT_WEBRTC_CONNECT_TIMEOUT", "0.5")
    async with serving() as served:
        pc = await _offer_pc()
        resp = await offer(served, pc)
        assert resp.status == 200
        session = only_session(served)
        reason = closed_reason(session)
        await pc.close()  # never applies the answer
        assert await asyncio.wait_for(reason, 10) == "hangup"
        await wait_no_sessions(served)
        assert session.transport.pc.connectionState == "closed"


async def test_many_browsers_at_once() -> None:
    async with serving() as served:
        clients: list[Client] = await asyncio.gather(*(connect(served) for _ in range(3)))
        assert len(served.server.sessions) == 3
        for client in clients:
            client.mic.say(0.6)
        for client in clients:
            await client.wait_for(lambda c=client: bool(c.named("agent_turn")), timeout=15)
        for client in clients:
            await client.close()
        await wait_no_sessions(served)


async def test_barge_in_empties_the_outgoing_audio_at_once() -> None:
    # ~15 s of fake speech, six different sentences (one said twice would be a loop, and cut off)
    long_reply = "".join(f"This is a very long answer that goes on, part {n}. " for n in range(1, 7))

    def pipeline() -> Any:
        return fake_pipeline(["tell me a story", "stop please right now"], reply=long_reply.strip())

    async with serving(pipeline=pipeline) as served:
        client = await connect(served)
        session = only_session(served)
        track = session.transport.track
        discards: list[tuple[float, float]] = []  # queued seconds before and after each discard
        output = session.transport.audio_output
        original = output.discard

        def spy() -> None:
            before = track.queued_seconds
            original()
            discards.append((before, track.queued_seconds))

        output.discard = spy  # type: ignore[method-assign]
        client.mic.say(0.8)
        await client.wait_for(lambda: client.loud_frames >= 10, timeout=15)
        assert track.queued_seconds > 3  # the reply is queued far ahead of playout

        client.mic.say(1.5)  # the user talks over the agent
        await client.wait_for(lambda: bool(client.named("agent_turn")), timeout=15)
        cut = client.named("agent_turn")[0]
        assert cut["interrupted"] is True
        assert len(cut["text"]) < len(long_reply.strip())
        assert discards and discards[0][0] > 1 and discards[0][1] == 0, discards
        await client.close()
        await wait_no_sessions(served)
