"""Resume plumbing: a session id from the client reaches ``open_session(resume_id=...)``.

``/ws?session=<id>`` and Twilio's ``session`` custom parameter name a
dropped session; an id that is not 1-128 characters of ``[A-Za-z0-9_.:-]``
is refused (1008) before a place is reserved. The server's ``session``
event reaches a ``/ws`` client as ``{"type": "session", ...}``.

The tests that open a session with a ``resume_id`` need
``SessionServer.open_session(..., resume_id=...)`` (the serving design);
they fail with 1011 on a server without it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ws_harness import TOKEN, Harness, captured_logs, pcm_client, twilio_call

from vocalis.serve.server import AdmissionError

BAD_IDS = ["", "a" * 129, "has space", "semi;colon", "slash/", "ünïcode", "new\nline"]


class Recorded:
    """Wraps ``server.open_session`` to note the keyword arguments of each call."""

    def __init__(self, harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[dict[str, Any]] = []
        original = harness.server.open_session

        async def open_session(transport: Any, **kwargs: Any) -> Any:
            self.calls.append(kwargs)
            return await original(transport, **kwargs)

        monkeypatch.setattr(harness.server, "open_session", open_session)


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_ws_refuses_an_invalid_session_id(bad: str) -> None:
    async with Harness() as harness:
        ws = await harness.http.ws_connect(harness.url("/ws"), params={"token": TOKEN, "session": bad})
        message = await ws.receive()
        assert ws.close_code == 1008 and message.extra == "invalid session id"
        assert harness.server.opened == 0 and harness.server.sessions == {}


@pytest.mark.parametrize("bad", [*BAD_IDS, 42, None])
async def test_twilio_refuses_an_invalid_session_parameter(bad: Any) -> None:
    async with Harness() as harness:
        call = await twilio_call(harness)
        await call.start({"token": TOKEN, "session": bad})
        assert await call.wait_closed() == 1008
        assert call.close_reason == "invalid session id"
        assert harness.server.opened == 0


async def test_without_a_session_id_no_resume_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    async with Harness() as harness:
        recorded = Recorded(harness, monkeypatch)
        client = await pcm_client(harness)
        await client.wait_for(lambda: bool(client.named("ready")))
        call = await twilio_call(harness)
        await call.start({"token": TOKEN, "caller": "+15550100"})
        await _until(lambda: len(harness.server.sessions) == 2)
        assert [c.get("resume_id") for c in recorded.calls] == [None, None]
        await client.aclose()
        await call.stop()
        await call.wait_closed()


async def test_the_session_id_reaches_open_session(monkeypatch: pytest.MonkeyPatch) -> None:
    # Needs SessionServer.open_session(..., resume_id=...).
    async with Harness() as harness:
        recorded = Recorded(harness, monkeypatch)
        client = await pcm_client(harness, session="s_abc-1.2:3")
        await client.wait_for(lambda: bool(client.named("ready")))
        call = await twilio_call(harness)
        await call.start({"token": TOKEN, "session": "s_" + "x" * 126, "caller": "+15550100"})
        await _until(lambda: len(harness.server.sessions) == 2)
        assert [c["resume_id"] for c in recorded.calls] == ["s_abc-1.2:3", "s_" + "x" * 126]
        assert all(c["reserved"] is True for c in recorded.calls)
        twilio = next(s for s in harness.server.sessions if s.transport.name == "twilio").transport
        assert twilio.custom_parameters == {"caller": "+15550100"}  # plumbing is not the application's
        await client.aclose()
        await call.stop()
        await call.wait_closed()


@pytest.mark.parametrize("path", ["/ws", "/twilio"])
async def test_a_session_busy_elsewhere_is_try_again_later(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def busy(transport: Any, **kwargs: Any) -> Any:
        raise AdmissionError(f"session {kwargs['resume_id']} is still running on another worker", 409, retry_after=2)

    async with Harness() as harness:
        monkeypatch.setattr(harness.server, "open_session", busy)
        with captured_logs() as lines:
            if path == "/ws":
                client: Any = await pcm_client(harness, session="s_elsewhere")
            else:
                client = await twilio_call(harness)
                await client.start({"token": TOKEN, "session": "s_elsewhere"})
            assert await client.wait_closed() == 1013
        assert client.close_reason == "try again later: session s_elsewhere is still running on another worker"
        assert not [line for line in lines if line.startswith("ERROR")]


async def test_the_session_event_reaches_the_client_as_is() -> None:
    async with Harness() as harness:
        client = await pcm_client(harness)
        await client.wait_for(lambda: bool(client.named("ready")))
        transport = harness.session().transport
        await client.wait_for(lambda: bool(client.named("session")))  # the server's own
        transport.send_event("session", {"session_id": "s_1", "resumed": True, "items": 7})
        await client.wait_for(lambda: len(client.named("session")) == 2)
        assert client.named("session")[-1] == {"type": "session", "session_id": "s_1", "resumed": True, "items": 7}
        await client.aclose()


async def test_the_server_says_which_session_a_client_has() -> None:
    # Needs the server's send_event("session", ...) after start (the serving design).
    async with Harness() as harness:
        client = await pcm_client(harness)
        await client.wait_for(lambda: bool(client.named("session")))
        session_id = harness.session().id
        assert client.named("session") == [{"type": "session", "session_id": session_id, "resumed": False, "items": 0}]
        kinds = [e["type"] for e in client.events]
        assert kinds[0] == "ready" and "session" in kinds
        await client.aclose()


async def test_a_client_that_reconnects_continues_its_conversation() -> None:
    # Needs the serving design's resume (SessionServer with its default in-process store).
    async with Harness(answers=["First answer.", "Second answer."]) as harness:
        client = await pcm_client(harness)
        await client.send_json({"type": "text", "text": "remember the number 42"})
        await client.wait_for(lambda: bool(client.named("agent_turn")))
        await client.wait_for(lambda: bool(client.named("session")))
        session_id = client.named("session")[0]["session_id"]
        await client.ws.close()  # the connection drops
        await _until(lambda: harness.server.sessions == {})

        again = await pcm_client(harness, session=session_id)
        await again.wait_for(lambda: bool(again.named("session")))
        assert again.named("session")[0]["session_id"] == session_id
        assert again.named("session")[0]["resumed"] is True and again.named("session")[0]["items"] >= 2
        assert again.named("ready")[0]["session_id"] == session_id
        user = [m.content for m in harness.agents[-1].chat_context.messages("user")]
        assert user == ["remember the number 42"]
        await again.aclose()


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
