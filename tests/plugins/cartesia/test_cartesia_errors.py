"""Failures of the WebSocket path, each mapped by type to a ProviderError with the right
kind and ``recoverable``: a refused handshake, error messages, close codes, a dropped connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from cartesia_server import CartesiaServer

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.tts import SynthesizedAudio
from vocalis_cartesia import CartesiaTTS

TEXT = "Hello there, my friend. How are you doing today?"


async def turn(tts: CartesiaTTS, text: str = TEXT) -> list[SynthesizedAudio]:
    stream = tts.stream()
    try:
        stream.push_text(text)
        stream.end_input()
        return [audio async for audio in stream]
    finally:
        await stream.aclose()


async def failure(tts: CartesiaTTS) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await asyncio.wait_for(turn(tts), 30)
    assert info.value.provider == "tts:cartesia"
    return info.value


@pytest.mark.parametrize(
    ("status", "kind", "recoverable"),
    [
        (401, ErrorKind.AUTH, False),
        (402, ErrorKind.AUTH, False),
        (429, ErrorKind.RATE_LIMIT, True),
        (503, ErrorKind.SERVER, True),
    ],
)
async def test_a_refused_handshake(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS], status: int, kind: ErrorKind, recoverable: bool
) -> None:
    server.refuse_status = status
    error = await failure(make_tts())
    assert (error.kind, error.recoverable) == (kind, recoverable)
    assert f"handshake refused: HTTP {status}" in str(error)


async def test_a_wrong_key_is_refused_by_the_server(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    error = await failure(make_tts(api_key="sk_car_not-the-right-key-123"))
    assert (error.kind, error.recoverable) == (ErrorKind.AUTH, False)


async def test_no_key_is_a_clear_error_before_any_request(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    tts = make_tts(api_key=None)
    error = await failure(tts)
    assert (error.kind, error.recoverable) == (ErrorKind.AUTH, False)
    assert "VOCALIS_TTS_CARTESIA_API_KEY" in str(error) and "CARTESIA_API_KEY" in str(error)
    with pytest.raises(ProviderError, match="VOCALIS_TTS_CARTESIA_API_KEY"):
        await tts.prewarm()
    with pytest.raises(ProviderError, match="VOCALIS_TTS_CARTESIA_API_KEY"):
        [frame async for frame in tts.synthesize("Hello there.")]
    assert server.handshakes == [] and server.bytes_requests == []


async def test_the_sdk_variable_is_a_fallback_key(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cartesia_server import API_KEY

    monkeypatch.setenv("CARTESIA_API_KEY", API_KEY)
    assert await turn(make_tts(api_key=None))


@pytest.mark.parametrize("style", ["2025", "2026"])
@pytest.mark.parametrize(
    ("status", "kind", "recoverable"),
    [(400, ErrorKind.BAD_REQUEST, False), (429, ErrorKind.RATE_LIMIT, True), (500, ErrorKind.SERVER, True)],
)
async def test_an_error_message_for_the_context(
    server: CartesiaServer,
    make_tts: Callable[..., CartesiaTTS],
    style: str,
    status: int,
    kind: ErrorKind,
    recoverable: bool,
) -> None:
    server.fail_status, server.error_style = status, style
    tts = make_tts()
    error = await failure(tts)
    assert (error.kind, error.recoverable) == (kind, recoverable)
    assert f"status {status}" in str(error) and "generation failed" in str(error)
    # The connection survives a context's error: the next turn works.
    server.fail_status = None
    assert await turn(tts)
    assert server.connections == 1


@pytest.mark.parametrize(
    ("code", "kind", "recoverable"),
    [
        (None, ErrorKind.CONNECTION, True),  # no close frame at all
        (1011, ErrorKind.SERVER, True),
        (1013, ErrorKind.RATE_LIMIT, True),
        (1008, ErrorKind.BAD_REQUEST, False),
        (4001, ErrorKind.AUTH, False),
        (4429, ErrorKind.RATE_LIMIT, True),
    ],
)
async def test_the_connection_closes_mid_turn(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS], code: int | None, kind: ErrorKind, recoverable: bool
) -> None:
    server.close_after_chunks, server.close_code = 3, code
    tts = make_tts()
    got: list[SynthesizedAudio] = []
    stream = tts.stream()
    stream.push_text(TEXT)
    stream.end_input()
    with pytest.raises(ProviderError) as info:
        async for audio in stream:
            got.append(audio)
    await stream.aclose()
    assert got, "the audio before the drop is delivered"
    assert (info.value.kind, info.value.recoverable) == (kind, recoverable)
    assert "connection closed mid-stream" in str(info.value)
    # The next turn opens a new connection.
    server.close_after_chunks = None
    assert await turn(tts)
    assert server.connections == 2


async def test_a_handshake_that_never_answers_times_out(make_tts: Callable[..., CartesiaTTS]) -> None:
    answered = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        await answered.wait()  # never answers the handshake
        writer.close()

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        error = await failure(make_tts(base_url=f"http://127.0.0.1:{port}", timeout=0.5))
    finally:
        answered.set()
        listener.close()
        await listener.wait_closed()
    assert (error.kind, error.recoverable) == (ErrorKind.TIMEOUT, True)


async def test_nothing_listening_is_a_connection_error(make_tts: Callable[..., CartesiaTTS]) -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    error = await failure(make_tts(base_url=f"ws://127.0.0.1:{port}"))
    assert (error.kind, error.recoverable) == (ErrorKind.CONNECTION, True)


async def test_a_malformed_message_is_a_protocol_error(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cartesia_ws import WebSocketConnection

    original = WebSocketConnection._message

    def corrupt(
        self: WebSocketConnection, kind: str, ctx: object, flush_id: int, **fields: object
    ) -> dict[str, object]:
        message = original(self, kind, ctx, flush_id, **fields)  # type: ignore[arg-type]
        if kind == "chunk":
            message["data"] = "not base64!"
        return message

    monkeypatch.setattr(WebSocketConnection, "_message", corrupt)
    error = await failure(make_tts())
    assert error.kind is ErrorKind.PROTOCOL
