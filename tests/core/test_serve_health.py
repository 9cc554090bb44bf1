"""Health, readiness, metrics and CORS of ``vocalis serve``, and sessions that keep failing.

``/livez``, ``/readyz`` and ``/healthz`` are public and answer ``HEAD``;
``/readyz`` is 503 with ``Retry-After`` and a reason when the server is
full, lagging, overloaded or draining, and admission refuses a session for
the same reason; ``/metrics`` needs the token. A session whose provider
fails without recovery ``max_errors`` times in a row is closed (reason
``errors``), after saying ``error_message`` for the failed turns.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import ClientSession
from loguru import logger

from vocalis import Agent, CascadingPipeline
from vocalis.providers.base import ProviderError
from vocalis.serve.http import serve
from vocalis.serve.server import AdmissionError, ServeOptions, SessionServer
from vocalis.testing import FakeLLM, FakeResponse, FakeSTT, FakeTransport, FakeTTS, FakeVAD, run_virtual

TOKEN = "health-token-4f2a9c"
APP = "https://app.example"
DEADLINE = 60.0  # seconds for anything to happen on a loaded 2-core box
APOLOGY = "Oops, that went wrong on my side."


def make_server(llm: Callable[[], FakeLLM] = lambda: FakeLLM(["ok"]), **options: Any) -> SessionServer:
    return SessionServer(
        lambda: Agent("Be brief."),
        lambda: CascadingPipeline(stt=FakeSTT([]), llm=llm(), tts=FakeTTS(), vad=FakeVAD(), turn_detector=None),
        ServeOptions(**options),
    )


@dataclass
class Served:
    server: SessionServer
    base: str
    client: ClientSession
    stop: asyncio.Event


@contextlib.asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[Served]:
    """``serve()`` in this loop, and an HTTP client for it."""
    server = make_server(port=0, token=TOKEN, **options)
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(server, [], ready=ready.set_result, stop=stop))
    base = (await asyncio.wait_for(ready, DEADLINE)).split("/?")[0]
    try:
        async with ClientSession() as client:
            yield Served(server, base, client, stop)
    finally:
        stop.set()
        for session in list(server.sessions):
            await session.close(reason="hangup")
        await asyncio.wait_for(task, DEADLINE)


# -- CORS ------------------------------------------------------------------------
async def test_cors_preflight_and_requests_from_an_allowed_origin() -> None:
    async with serving(allowed_origins=(APP,)) as s:
        preflight = {
            "Origin": APP,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        }
        async with s.client.options(f"{s.base}/metrics", headers=preflight) as response:
            # A preflight carries no credentials: no token needed.
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == APP
            assert "GET" in response.headers["Access-Control-Allow-Methods"]
            assert response.headers["Access-Control-Allow-Headers"] == "authorization"
        auth = {"Origin": APP, "Authorization": f"Bearer {TOKEN}"}
        async with s.client.get(f"{s.base}/metrics", headers=auth) as response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == APP
            assert response.headers["Access-Control-Allow-Credentials"] == "true"
        async with s.client.get(f"{s.base}/metrics", headers={"Origin": APP}) as response:
            assert response.status == 401  # allowed origin, no token
            assert response.headers["Access-Control-Allow-Origin"] == APP  # so the page can read why
        for method in ("GET", "OPTIONS"):
            foreign = {**preflight, "Origin": "https://evil.example", "Authorization": f"Bearer {TOKEN}"}
            async with s.client.request(method, f"{s.base}/metrics", headers=foreign) as response:
                assert response.status == 403, method
                assert "Access-Control-Allow-Origin" not in response.headers
        async with s.client.get(f"{s.base}/livez", headers={"Origin": s.base}) as response:
            assert response.status == 200  # the page's own origin needs no CORS
            assert "Access-Control-Allow-Origin" not in response.headers


# -- public health, private metrics --------------------------------------------------
async def test_health_routes_answer_head_without_a_token_and_metrics_need_it() -> None:
    async with serving() as s:
        for path in ("/healthz", "/livez", "/readyz"):
            async with s.client.head(f"{s.base}{path}") as response:
                assert response.status == 200, path
                assert await response.read() == b""
        async with s.client.get(f"{s.base}/livez") as response:
            assert (await response.json())["alive"] is True
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            async with s.client.get(f"{s.base}/metrics", headers=headers) as response:
                assert response.status == 401
                assert "vocalis_" not in await response.text()
            async with s.client.head(f"{s.base}/metrics", headers=headers) as response:
                assert response.status == 401
        session = await s.server.open_session(FakeTransport())
        async with s.client.get(f"{s.base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await response.text()
        assert "# TYPE vocalis_sessions_active gauge" in text
        assert "vocalis_sessions_active 1.0" in text and "vocalis_sessions_admitted_total 1.0" in text
        await session.close(reason="hangup")


# -- readiness and admission ---------------------------------------------------------
async def refused_for(s: Served, reason: str) -> None:
    """``/readyz`` (and ``/healthz``) say 503 for ``reason``; admission refuses for it too."""
    for path in ("/readyz", "/healthz"):
        async with s.client.get(f"{s.base}{path}") as response:
            body = await response.json()
            assert response.status == 503, (path, body)
            assert int(response.headers["Retry-After"]) > 0
            assert body["ready"] is False and body["reason"] == reason, body
    async with s.client.head(f"{s.base}/readyz") as response:
        assert response.status == 503
    with pytest.raises(AdmissionError) as info:
        s.server.admit()
    assert (info.value.status, info.value.reason) == (503, reason)
    assert info.value.retry_after > 0


async def ready(s: Served) -> dict[str, Any]:
    async with s.client.get(f"{s.base}/readyz") as response:
        body: dict[str, Any] = await response.json()
        assert response.status == 200 and body["ready"] is True and "Retry-After" not in response.headers, body
        return body


async def test_readyz_and_admission_refuse_when_full() -> None:
    async with serving(max_sessions=2) as s:
        await ready(s)
        s.server.admit()
        session = await s.server.open_session(FakeTransport())  # one reserved, one running: full
        await refused_for(s, "full")
        s.server.release()
        assert (await ready(s))["sessions"] == 1
        await session.close(reason="hangup")
        async with s.client.get(f"{s.base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert 'vocalis_sessions_refused_total{reason="full"} 1.0' in await response.text()


async def test_readyz_and_admission_refuse_when_the_loop_lags() -> None:
    async with serving(max_loop_lag=0.5) as s:
        await s.server.monitor.aclose()  # no sampling: the lag below stays what the test says
        s.server.monitor.record_lag(0.1)
        await ready(s)
        s.server.monitor.record_lag(5.0)
        await refused_for(s, "lagging")
        async with s.client.get(f"{s.base}/livez") as response:
            assert response.status == 200 and (await response.json())["loop_lag"] == 5.0  # alive, only late


async def test_readyz_and_admission_refuse_when_overloaded() -> None:
    load = [0.2]
    async with serving(load_function=lambda: load[0], max_load=0.7) as s:
        assert (await ready(s))["load"] == 0.2
        load[0] = 1.0
        await refused_for(s, "overloaded")
        load[0] = 0.5
        await ready(s)


async def test_a_broken_load_function_is_logged_and_counts_as_no_load() -> None:
    def broken() -> float:
        raise RuntimeError("no GPU figures today")

    warnings: list[str] = []
    sink = logger.add(lambda message: warnings.append(message.record["message"]), level="WARNING")
    try:
        async with serving(load_function=broken, max_load=0.7) as s:
            assert (await ready(s))["load"] == 0.0
            s.server.admit()
            s.server.release()
    finally:
        logger.remove(sink)
    assert any("load function failed" in w and "no GPU figures today" in w for w in warnings), warnings


async def test_readyz_and_admission_refuse_while_draining() -> None:
    async with serving(drain_timeout=120.0) as s:
        session = await s.server.open_session(FakeTransport())  # keeps the drain waiting
        await ready(s)
        s.stop.set()
        loop = asyncio.get_running_loop()
        end = loop.time() + DEADLINE
        while s.server.accepting:
            assert loop.time() < end
            await asyncio.sleep(0.01)
        await refused_for(s, "draining")
        async with s.client.get(f"{s.base}/readyz") as response:
            assert int(response.headers["Retry-After"]) == 120
        assert not session.closed  # running sessions go on while draining
        await session.close(reason="hangup")


# -- sessions that keep failing ------------------------------------------------------
def failing_llm() -> FakeLLM:
    """An LLM that fails every turn, without recovery (as a revoked API key would)."""
    return FakeLLM([FakeResponse(error=ProviderError("the key was revoked", provider="llm:fake", recoverable=False))])


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + DEADLINE
    while not condition():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def test_a_session_is_closed_after_max_errors_unrecoverable_errors() -> None:
    async def main() -> None:
        server = make_server(failing_llm, max_errors=3, error_message=APOLOGY)
        session = await server.open_session(FakeTransport())
        errors: list[dict[str, Any]] = []
        said: list[str] = []
        closes: list[str] = []
        session.on("error", lambda e: errors.append(dict(e)))
        session.on("agent_turn", lambda e: said.append(e["text"]))
        session.on("close", lambda e: closes.append(e["reason"]))
        for turn in range(1, 4):
            assert not session.closed, (turn, errors)
            await session.send_text(f"question {turn}")
            await wait_until(lambda n=turn: len(errors) >= n, f"the error of turn {turn}")  # type: ignore[misc]
            await wait_until(lambda n=turn: len(said) >= n or session.closed, f"the answer to turn {turn}")  # type: ignore[misc]
        await wait_until(lambda: bool(closes), "the session to close")
        assert closes == ["errors"] and session.closed, closes
        assert [(e["source"], e["recoverable"]) for e in errors] == [("llm:fake", False)] * 3, errors
        # The failed turns were answered with the apology (the last one is cut by the close).
        assert said[:2] == [APOLOGY, APOLOGY], said
        assert session not in server.sessions
        await server.aclose()

    run_virtual(main())


def test_with_max_errors_zero_a_failing_session_goes_on() -> None:
    async def main() -> None:
        server = make_server(failing_llm, max_errors=0, error_message=APOLOGY)
        session = await server.open_session(FakeTransport())
        errors: list[dict[str, Any]] = []
        said: list[str] = []
        session.on("error", lambda e: errors.append(dict(e)))
        session.on("agent_turn", lambda e: said.append(e["text"]))
        for turn in range(1, 6):
            await session.send_text(f"question {turn}")
            await wait_until(lambda n=turn: len(said) >= n, f"the answer to turn {turn}")  # type: ignore[misc]
        assert not session.closed and session in server.sessions
        assert said == [APOLOGY] * 5 and len(errors) == 5
        await server.aclose()

    run_virtual(main())
