"""Connection-level failures and dead peers: one rate-limited line, nothing hangs.

The probe that found it: with the process out of file descriptors every
connection's handler raised ``OSError(EMFILE)`` and aiohttp printed a full
traceback for each, flooding stderr.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from ws_harness import TOKEN, Harness, captured_logs, pcm_client, twilio_call

import vocalis_websocket.twilio
from vocalis_websocket.base import guarded
from vocalis_websocket.throttle import ThrottledLog


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def _out_of_descriptors(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.EMFILE, "Too many open files")


@pytest.mark.parametrize("path", ["/twilio", "/ws"])
async def test_running_out_of_descriptors_logs_a_few_lines_not_tracebacks(
    path: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("VOCALIS_TRANSPORT_TWILIO_LOG_INTERVAL", "3600")  # one window for the whole test
    monkeypatch.setenv("VOCALIS_TRANSPORT_WEBSOCKET_LOG_INTERVAL", "3600")
    async with Harness() as harness:
        with monkeypatch.context() as patch, captured_logs("DEBUG") as lines:
            patch.setattr(web.WebSocketResponse, "prepare", _out_of_descriptors)
            for _ in range(20):
                with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                    await harness.http.ws_connect(harness.url(path, token=TOKEN))
                assert info.value.status == 503
        name = "websocket" if path == "/ws" else "twilio"
        failed = [line for line in lines if "connection failed" in line]
        assert failed == [f"WARNING {name}: connection failed: OSError: [Errno 24] Too many open files"] * 5
        assert f"WARNING {name}: 15 more refused or failed connections suppressed" not in lines  # not yet: same window
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        assert not [line for line in lines if line.startswith("ERROR")]
        # Descriptors are back: the endpoint serves again.
        if path == "/ws":
            client = await pcm_client(harness)
            await client.wait_for(lambda: bool(client.named("ready")))
            await client.aclose()
        else:
            call = await twilio_call(harness)
            await call.start({"token": TOKEN})
            await call.stop()
            assert await call.wait_closed() == 1000
        assert harness.server.opened == 1


async def test_a_peer_reset_while_reading_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    async def reset(*args: Any, **kwargs: Any) -> Any:
        raise aiohttp.ClientConnectionResetError("Cannot write to closing transport")

    monkeypatch.setattr(vocalis_websocket.twilio, "wait_for_start", reset)
    async with Harness() as harness:
        with captured_logs("DEBUG") as lines:
            call = await twilio_call(harness)
            assert await call.wait_closed() == 1011
        assert [line for line in lines if "connection failed" in line] == [
            "WARNING twilio: connection failed: ClientConnectionResetError: Cannot write to closing transport"
        ]
        assert "Traceback" not in "\n".join(lines)


async def test_guarded_lets_cancellation_and_bugs_through() -> None:
    log = ThrottledLog("test", "failed connections")

    async def cancelled() -> None:
        raise asyncio.CancelledError

    async def bug() -> None:
        raise KeyError("a bug must keep its traceback")

    async def reset() -> None:
        raise ConnectionResetError("reset by peer")

    with pytest.raises(asyncio.CancelledError):
        await guarded(web.WebSocketResponse(), cancelled(), log)
    with pytest.raises(KeyError):
        await guarded(web.WebSocketResponse(), bug(), log)
    with captured_logs() as lines:
        response = await guarded(web.WebSocketResponse(), reset(), log)
    assert response.status == 503  # never accepted: a plain answer instead of the socket
    assert lines == ["WARNING test: connection failed: ConnectionResetError: reset by peer"]


class StuckHarness(Harness):
    """The first agent never gets made (a factory waiting on something that never comes)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stuck = 1

    def make_agent(self) -> Any:
        if self.stuck:
            self.stuck -= 1
            return asyncio.Event().wait()  # an awaitable that never completes
        return super().make_agent()


@pytest.mark.parametrize("path", ["/ws", "/twilio"])
async def test_a_session_that_never_starts_gives_its_place_back(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_TRANSPORT_WEBSOCKET_OPEN_TIMEOUT", "0.3")
    monkeypatch.setenv("VOCALIS_TRANSPORT_TWILIO_OPEN_TIMEOUT", "0.3")
    async with StuckHarness(max_sessions=1) as harness:
        for attempt in range(2):
            if path == "/ws":
                client: Any = await pcm_client(harness)
            else:
                client = await twilio_call(harness)
                await client.start({"token": TOKEN})
            if attempt == 0:
                assert await client.wait_closed() == 1011
                assert client.close_reason == "the session could not start in time"
                assert harness.server.sessions == {}
            else:  # the one place of the server is free again
                await asyncio.wait_for(harness.agent_made.wait(), 10)
                await client.aclose()
        assert harness.server.opened == 1


async def test_a_dead_client_is_closed_by_the_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_TRANSPORT_WEBSOCKET_HEARTBEAT", "0.2")
    async with Harness() as harness:
        # autoping=False: the client never answers the server's pings, as a vanished peer would.
        ws = await harness.http.ws_connect(harness.url("/ws", token=TOKEN), autoping=False)
        await _until(lambda: len(harness.server.sessions) == 1)
        session = harness.session()
        await _until(lambda: session.closed)
        assert session.close_reason == "hangup"
        assert harness.server.sessions == {}
        await ws.close()
