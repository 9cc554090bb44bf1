"""SessionServer (admission, isolation, idle timeout, drain) and the HTTP
security layer of ``vocalis serve``."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from aiohttp import ClientSession, web

from vocalis import Agent, CascadingPipeline
from vocalis.audio import AudioFrame
from vocalis.serve.http import Routes, build_app, serve
from vocalis.serve.server import AdmissionError, ServeOptions, SessionServer
from vocalis.testing import FakeLLM, FakeResponse, FakeSTT, FakeTransport, FakeTTS, FakeVAD, run_virtual, tone


def echo_llm() -> FakeLLM:
    # Answers from the session's own context, so crossed sessions would show.
    return FakeLLM([lambda ctx, tools: f"You said {ctx.last_message('user').content}."] * 10)


def make_server(**options: Any) -> SessionServer:
    return SessionServer(
        lambda: Agent("Be brief."),
        lambda: CascadingPipeline(stt=FakeSTT([]), llm=echo_llm(), tts=FakeTTS(), vad=FakeVAD(), turn_detector=None),
        ServeOptions(**options),
    )


def test_sessions_are_isolated_and_limited() -> None:
    async def main() -> None:
        server = make_server(max_sessions=3)
        transports = [FakeTransport() for _ in range(3)]
        sessions = [await server.open_session(t) for t in transports]
        with pytest.raises(AdmissionError) as info:
            await server.open_session(FakeTransport())
        assert info.value.status == 503 and "full" in str(info.value)
        await asyncio.gather(*(s.send_text(f"number {n}") for n, s in enumerate(sessions)))
        await asyncio.sleep(5)
        for n, session in enumerate(sessions):
            assert session.agent.chat_context.last_message("assistant").content == f"You said number {n}."
        assert len({id(s.agent) for s in sessions}) == 3 and len({id(s.pipeline) for s in sessions}) == 3
        await sessions[0].close()
        assert len(server.sessions) == 2
        await server.open_session(FakeTransport())  # the place is free again
        await server.aclose()
        assert server.sessions == {} and all(t.closed == 1 for t in transports)

    run_virtual(main())


def test_idle_sessions_are_closed_and_activity_keeps_them() -> None:
    async def main() -> None:
        server = make_server(idle_timeout=10.0)
        idle = await server.open_session(FakeTransport())
        busy = await server.open_session(FakeTransport())
        reasons: list[str] = []
        idle.on("close", lambda e: reasons.append(e["reason"]))
        for _ in range(4):
            await asyncio.sleep(4)
            await busy.send_text("still here")
        assert idle.closed and reasons == ["idle"]
        assert not busy.closed and list(server.sessions) == [busy]
        await server.aclose()
        assert busy.closed

    run_virtual(main())


def test_idle_means_nobody_is_active_however_long_they_are() -> None:
    """Idle timeout 5 s: a user speaking 9 s without a pause, an agent thinking 6 s
    and then speaking 11 s are all activity; 5 s of silence after them is idle."""
    # 11 sentences of 1.05 s of FakeTTS audio, each its own (a repeated one would be a loop, and cut)
    story = "".join(f"A story that goes on {letter}. " for letter in "ABCDEFGHIJK")

    async def main() -> None:
        server = SessionServer(
            lambda: Agent("Tell stories."),
            lambda: CascadingPipeline(
                stt=FakeSTT(["tell me a story"]),
                llm=FakeLLM([FakeResponse(story.strip(), ttft=6.0)]),
                tts=FakeTTS(),
                vad=FakeVAD(),
                turn_detector=None,
            ),
            ServeOptions(idle_timeout=5.0),
        )
        transport = FakeTransport()
        session = await server.open_session(transport)
        loop = asyncio.get_running_loop()
        closed_at: list[float] = []
        replied_at: list[float] = []
        session.on("close", lambda e: closed_at.append(loop.time()) if e["reason"] == "idle" else None)
        session.on("agent_turn", lambda e: replied_at.append(loop.time()))

        async def push(frame: AudioFrame, seconds: float) -> None:
            start = loop.time()
            for index in range(round(seconds / 0.02)):
                transport.push(frame)
                await asyncio.sleep(max(0.0, start + (index + 1) * 0.02 - loop.time()))

        await push(AudioFrame.silence(0.02, 16_000), 1.0)
        await push(tone(0.02, 16_000), 9.0)  # 9 s of speech, no pause
        assert not session.closed
        while not replied_at and not session.closed:
            await push(AudioFrame.silence(0.02, 16_000), 0.1)  # the agent thinks 6 s, then speaks 11 s
        assert replied_at and not session.closed, "closed while someone was active"
        assert sum(f.frame.duration for f in transport.audio_output.frames) > 11.0
        while not session.closed:
            await push(AudioFrame.silence(0.02, 16_000), 0.1)
        (closed,) = closed_at
        assert 5.0 <= closed - replied_at[0] <= 5.0 + 1.25 + 0.1  # the watcher looks every 1.25 s
        await server.aclose()

    run_virtual(main())


def test_drain_lets_sessions_finish_then_closes_the_rest() -> None:
    async def main() -> None:
        server = make_server(drain_timeout=5.0)
        finishing = await server.open_session(FakeTransport())
        lingering = await server.open_session(FakeTransport())
        reasons: dict[str, str] = {}
        for s in (finishing, lingering):
            s.on("close", lambda e: reasons.__setitem__(e["session_id"], e["reason"]))
        loop = asyncio.get_running_loop()
        loop.call_later(1.0, lambda: loop.create_task(finishing.close(reason="hangup")))
        started = loop.time()
        await server.drain()
        assert 4.9 < loop.time() - started < 6.0
        assert reasons == {finishing.id: "hangup", lingering.id: "shutdown"}
        with pytest.raises(AdmissionError, match="shutting down"):
            await server.open_session(FakeTransport())

    run_virtual(main())


def test_a_failing_agent_factory_frees_its_place() -> None:
    async def main() -> None:
        def broken() -> Agent:
            raise RuntimeError("no agent today")

        server = SessionServer(
            broken,
            lambda: CascadingPipeline(stt=FakeSTT([]), llm=echo_llm(), tts=FakeTTS()),
            ServeOptions(max_sessions=1),
        )
        for _ in range(2):
            with pytest.raises(RuntimeError, match="no agent today"):
                await server.open_session(FakeTransport())
        assert server.sessions == {} and server._pending == 0

    run_virtual(main())


class EchoEndpoint:
    """A serving 'transport' for the HTTP tests: one private and one public route."""

    name: ClassVar[str] = "echo"

    @classmethod
    def add_routes(cls, routes: Routes, server: SessionServer) -> None:
        async def private(request: web.Request) -> web.Response:
            return web.json_response({"ok": True, "body": len(await request.read())})

        async def public(request: web.Request) -> web.Response:
            return web.json_response({"public": True})

        routes.post("/private", private)
        routes.get("/public", public, public=True)


@pytest.fixture
async def http() -> Any:
    server = make_server(token="secret", allowed_origins=("https://app.example",), max_message_bytes=1000)
    runner = web.AppRunner(build_app(server, [EchoEndpoint]), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with ClientSession() as client:
        yield client, f"http://127.0.0.1:{port}"
    await runner.cleanup()
    await server.aclose()


async def test_the_token_is_required_wherever_it_is_carried(http: Any) -> None:
    client, base = http
    for kwargs in ({}, {"params": {"token": "wrong"}}, {"headers": {"Authorization": "Bearer nope"}}):
        async with client.post(f"{base}/private", **kwargs) as response:
            assert response.status == 401
    for kwargs in (
        {"params": {"token": "secret"}},
        {"headers": {"Authorization": "Bearer secret"}},
        {"cookies": {"vocalis_token": "secret"}},
    ):
        async with client.post(f"{base}/private", **kwargs) as response:
            assert response.status == 200, kwargs
    async with client.get(f"{base}/public") as response:
        assert response.status == 200
    async with client.get(f"{base}/healthz") as response:
        body = await response.json()
        assert body["ready"] and body["accepting"] and (body["sessions"], body["max_sessions"]) == (0, 20)


async def test_foreign_origins_are_refused(http: Any) -> None:
    client, base = http
    ok = {"token": "secret"}
    for origin, status in ((base, 200), ("https://app.example", 200), ("https://evil.example", 403)):
        async with client.post(f"{base}/private", params=ok, headers={"Origin": origin}) as response:
            assert response.status == status, origin
    async with client.get(f"{base}/public", headers={"Origin": "https://evil.example"}) as response:
        assert response.status == 403  # public routes are still same-origin


async def test_bodies_over_the_limit_are_refused(http: Any) -> None:
    client, base = http
    async with client.post(f"{base}/private", params={"token": "secret"}, data=b"x" * 5000) as response:
        assert response.status == 413


async def test_serve_prints_the_url_and_stops_cleanly() -> None:
    server = make_server(port=0, token="tok")
    stop = asyncio.Event()
    urls: list[str] = []

    def ready(url: str) -> None:
        urls.append(url)
        stop.set()

    before = asyncio.all_tasks()
    await asyncio.wait_for(serve(server, [EchoEndpoint], ready=ready, stop=stop), 10)
    assert urls and urls[0].startswith("http://127.0.0.1:") and urls[0].endswith("/?token=tok")
    assert not server.accepting
    assert asyncio.all_tasks() <= before | {asyncio.current_task()}


def test_drain_flushes_every_sessions_metrics_to_the_file(tmp_path: Any) -> None:
    from vocalis.observability.metrics_file import read_metrics

    path = tmp_path / "serve.jsonl"

    async def main() -> None:
        server = make_server(drain_timeout=5.0, metrics_path=path)
        leaving = await server.open_session(FakeTransport())
        staying = await server.open_session(FakeTransport())
        await asyncio.gather(leaving.send_text("first"), staying.send_text("second"))
        loop = asyncio.get_running_loop()
        loop.call_later(1.0, lambda: loop.create_task(leaving.close(reason="hangup")))
        await server.drain()
        assert leaving.closed and staying.closed
        # Nothing is written after the drain: the file is closed.
        assert server._metrics is not None and server._metrics._file is None

    run_virtual(main())
    records = read_metrics(path)
    sessions = [r["session_id"] for r in records if r["type"] == "session"]
    assert len(sessions) == 2
    for session_id in sessions:
        mine = [r for r in records if r.get("session_id") == session_id]
        assert [r["type"] for r in mine] == ["session", "turn", "summary"], mine
        assert mine[1]["source"] == "user_turn" and mine[1]["llm"], mine[1]
        assert mine[2]["turns"] == 1


async def test_healthz_reveals_no_secrets_and_says_when_draining(http: Any) -> None:
    client, base = http
    async with client.get(f"{base}/healthz") as response:
        assert response.status == 200
        body = await response.text()
    assert "secret" not in body and "token" not in body
    # The token also stays out of the server's reprs.
    server = make_server(token="secret-token-value")
    assert "secret-token-value" not in repr(server.options) + repr(server)


async def test_healthz_is_503_while_draining() -> None:
    server = make_server(port=0, token="tok", drain_timeout=30.0)
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(server, [EchoEndpoint], ready=ready.set_result, stop=stop))
    url = await asyncio.wait_for(ready, 10)
    base = url.split("/?")[0]
    session = await server.open_session(FakeTransport())  # keeps the drain waiting
    async with ClientSession() as client:
        async with client.get(f"{base}/healthz") as response:
            assert response.status == 200 and (await response.json())["sessions"] == 1
        stop.set()
        while server.accepting:
            await asyncio.sleep(0.01)
        async with client.get(f"{base}/healthz") as response:
            assert response.status == 503 and (await response.json())["accepting"] is False
        with pytest.raises(AdmissionError, match="shutting down"):
            await server.open_session(FakeTransport())
    await session.close(reason="hangup")
    await asyncio.wait_for(task, 10)


async def test_tokens_are_compared_in_constant_time_and_odd_ones_are_refused(
    http: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hmac

    from vocalis.serve import server as server_module

    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(server_module.hmac, "compare_digest", spy)
    client, base = http
    for headers in ({"Authorization": "Bearer secreT"}, {"Authorization": "Bearer s\u00e9cret"}):
        async with client.post(f"{base}/private", headers=headers) as response:
            assert response.status == 401
    # Bytes that are not UTF-8 reach the check as lone surrogates: refused, not a 500.
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /private HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    assert (await reader.read()).startswith(b"HTTP/1.1 401 ")
    writer.close()
    await writer.wait_closed()
    async with client.post(f"{base}/private", params={"token": "%FF"}) as response:
        assert response.status == 401
    assert len(compared) >= 3 and all(b == b"secret" for _, b in compared)


async def test_the_access_log_leaves_the_token_out(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="aiohttp.access")
    server = make_server(port=0, token="tok-in-the-query")
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(server, [EchoEndpoint], ready=ready.set_result, stop=stop))
    base = (await asyncio.wait_for(ready, 10)).split("/?")[0]
    async with ClientSession() as client:
        async with client.post(f"{base}/private", params={"token": "tok-in-the-query"}) as response:
            assert response.status == 200
    stop.set()
    await asyncio.wait_for(task, 10)
    access = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any('"POST /private" 200' in line for line in access), access
    assert "tok-in-the-query" not in caplog.text
