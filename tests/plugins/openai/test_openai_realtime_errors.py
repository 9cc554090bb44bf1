"""OpenAIRealtime failures: server errors, dropped sockets, refused handshakes, closing."""

from __future__ import annotations

import asyncio
import socket

import pytest
from realtime_server import API_KEY, RealtimeServer, ServerTurn
from test_openai_realtime import E, is_done, make_model, read_audio, read_until, server

from vocalis.audio import AudioFrame
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis_openai.realtime import OpenAIRealtime

__all__ = ["server"]  # the fixture, shared with the main test module


async def test_error_events_are_reported_not_fatal(server: RealtimeServer) -> None:
    server.turns = [ServerTurn(error="The server had an error processing your request."), ServerTurn(reply="Hi.")]
    model = make_model(server)
    rt = await model.connect(instructions="x")
    await rt.create_response()
    # The rejected request ends as an empty, interrupted answer instead of a 30 s wait.
    events = await read_until(rt, is_done)
    assert [e.type for e in events] == [E.ERROR, E.RESPONSE_STARTED, E.RESPONSE_DONE] and events[-1].interrupted
    [error] = rt.errors
    assert error.provider == "realtime:openai" and "scripted_error" in str(error)
    assert events[0].error is error  # the pipeline reports it as a session error event
    # Nonsense from the server is skipped too.
    ws = server.connections[0].ws
    await ws.send("{not json")
    await ws.send('{"type": "rate_limits.updated", "rate_limits": []}')
    await ws.send('{"type": "response.output_audio.delta", "response_id": "r", "item_id": "i", "delta": "%%%"}')
    await rt.create_response()
    events = await read_until(rt, is_done)
    await model.aclose()
    assert E.AUDIO in [e.type for e in events] and not events[-1].interrupted
    assert len(rt.errors) == 1


@pytest.mark.parametrize("how", ["abort", "close_frame"])
async def test_socket_closing_mid_response_fails_the_stream(server: RealtimeServer, how: str) -> None:
    server.turns = [
        ServerTurn(
            reply="This answer never finishes.",
            drop_after=3 if how == "abort" else None,
            hold_after=3 if how == "close_frame" else None,
        )
    ]
    model = make_model(server)
    rt = await model.connect(instructions="x")
    await rt.create_response()
    await read_audio(rt, 3)
    if how == "close_frame":
        await server.connections[0].ws.close(1011, "internal error")
    with pytest.raises(ProviderError) as info:
        async with asyncio.timeout(5):
            async for _ in rt:
                pass
    error = info.value
    assert error.provider == "realtime:openai" and error.recoverable
    assert "closed unexpectedly" in str(error)
    assert ("code 1011: internal error" if how == "close_frame" else "no close frame") in str(error)
    with pytest.raises(ProviderError, match="ended"):
        await rt.send_text("hello?")
    rt.push_audio(AudioFrame.silence(0.02, 24_000))  # dropped quietly once the session is gone
    await rt.aclose()
    await rt.aclose()
    await model.aclose()


async def test_refused_connection() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = OpenAIRealtime(_env_file=None, api_key=API_KEY, base_url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(ProviderError) as info:
        await model.connect(instructions="x")
    await model.aclose()
    assert info.value.provider == "realtime:openai" and info.value.recoverable
    assert info.value.kind is ErrorKind.CONNECTION
    assert str(info.value).startswith("realtime:openai: connection failed")


async def test_bad_key_is_refused_at_the_handshake(server: RealtimeServer) -> None:
    model = make_model(server, api_key="sk-wrong-key-123456")
    with pytest.raises(ProviderError) as info:
        await model.connect(instructions="x")
    await model.aclose()
    assert info.value.kind is ErrorKind.AUTH and not info.value.recoverable
    assert "handshake refused: HTTP 401: Incorrect API key" in str(info.value)  # server's words
    assert "sk-wrong-key-123456" not in str(info.value)
    assert server.received == []


async def test_unknown_model_fails_connect(server: RealtimeServer) -> None:
    model = make_model(server, model="gpt-nope")
    with pytest.raises(ProviderError) as info:
        await model.connect(instructions="x")
    await model.aclose()
    assert "model_not_found" in str(info.value) and not info.value.recoverable


@pytest.mark.parametrize(
    ("status", "recoverable", "kind"),
    [
        (403, False, ErrorKind.AUTH),
        (404, False, ErrorKind.BAD_REQUEST),
        (429, True, ErrorKind.RATE_LIMIT),
        (500, True, ErrorKind.SERVER),
        (503, True, ErrorKind.SERVER),
    ],
)
async def test_refused_handshakes_by_status(
    server: RealtimeServer, status: int, recoverable: bool, kind: ErrorKind
) -> None:
    server.handshake_status = status
    model = make_model(server)
    with pytest.raises(ProviderError) as info:
        await model.connect(instructions="x")
    await model.aclose()
    assert info.value.kind is kind and info.value.recoverable is recoverable
    assert f"handshake refused: HTTP {status}: scripted handshake {status}" in str(info.value)


async def test_a_server_that_is_not_websocket_is_a_protocol_error() -> None:
    async def bad_upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    odd = await asyncio.start_server(bad_upgrade, "127.0.0.1", 0)
    port = odd.sockets[0].getsockname()[1]
    model = OpenAIRealtime(_env_file=None, api_key=API_KEY, base_url=f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(ProviderError) as info:
            await model.connect(instructions="x")
        assert info.value.kind is ErrorKind.PROTOCOL and info.value.recoverable
        assert str(info.value).startswith("realtime:openai: handshake failed")
    finally:
        await model.aclose()
        odd.close()
        await odd.wait_closed()


async def test_handshake_timeout() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # swallow the upgrade request, answer nothing
        finally:
            writer.close()

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    model = OpenAIRealtime(_env_file=None, api_key=API_KEY, base_url=f"http://127.0.0.1:{port}/v1", timeout=0.2)
    try:
        with pytest.raises(ProviderError, match="handshake timed out after 0.2 s") as info:
            await model.connect(instructions="x")
        assert info.value.kind is ErrorKind.TIMEOUT and info.value.recoverable
    finally:
        await model.aclose()
        silent.close()
        await silent.wait_closed()


async def test_closing(server: RealtimeServer) -> None:
    model = make_model(server)
    first = await model.connect(instructions="x")
    second = await model.connect(instructions="x")
    await first.aclose()
    await first.aclose()
    await model.aclose()  # closes the sessions still open
    await model.aclose()
    async with asyncio.timeout(5):
        assert [e async for e in second] == []
    with pytest.raises(ProviderError):
        await second.create_response()


async def test_end_input_closes_cleanly(server: RealtimeServer) -> None:
    server.turns = [ServerTurn(reply="Bye.")]
    model = make_model(server)
    rt = await model.connect(instructions="x")
    await rt.send_text("bye")
    rt.end_input()
    async with asyncio.timeout(5):
        events = [e async for e in rt]  # ends without an error once the socket is closed
    await model.aclose()
    assert events == [] and server.types() == ["session.update", "conversation.item.create"]
