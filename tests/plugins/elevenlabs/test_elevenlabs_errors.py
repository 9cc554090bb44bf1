"""Failures of both endpoints mapped to ProviderError kinds; the socket's HTTP fallback."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from elevenlabs_server import API_KEY, ElevenLabsServer
from elevenlabs_shapes import detail

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis_elevenlabs import ElevenLabsTTS

Make = Callable[..., ElevenLabsTTS]
QUOTA = "This request exceeds your quota of 10000. You have 12 credits remaining, while 40 credits are required."


async def stream_error(tts: ElevenLabsTTS, text: str = "Hello there. How are you?") -> ProviderError:
    stream = tts.stream()
    stream.push_text(text)
    stream.end_input()
    with pytest.raises(ProviderError) as caught:
        async for _ in stream:
            pass
    await stream.aclose()
    return caught.value


async def synthesize_error(tts: ElevenLabsTTS) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        async for _ in tts.synthesize("Hello there."):
            pass
    return caught.value


@pytest.mark.parametrize(
    ("behaviour", "kind", "recoverable", "words"),
    [
        pytest.param(
            {"close_reason": "quota", "error_message": {"message": QUOTA, "error": "quota_exceeded", "code": 1008}},
            ErrorKind.AUTH,
            False,
            "quota_exceeded",
            id="quota-error-message",
        ),
        pytest.param(
            {"close_reason": "You have exceeded your quota."}, ErrorKind.AUTH, False, "1008", id="quota-close"
        ),
        pytest.param(
            {"close_reason": "We are sorry, something went wrong. You are not charged for this request."},
            ErrorKind.SERVER,
            True,
            "something went wrong",
            id="server-fault-1008",
        ),
        pytest.param({"close_code": 1011, "close_reason": "internal"}, ErrorKind.SERVER, True, "1011", id="1011"),
        pytest.param({"close_code": 1009, "close_reason": ""}, ErrorKind.BAD_REQUEST, False, "1009", id="1009"),
        pytest.param({"close_code": 1013, "close_reason": ""}, ErrorKind.RATE_LIMIT, True, "1013", id="try-later"),
    ],
)
async def test_socket_closes_are_mapped(
    make_tts: Make, server: ElevenLabsServer, behaviour: dict[str, Any], kind: ErrorKind, recoverable: bool, words: str
) -> None:
    for name, value in behaviour.items():
        setattr(server.behaviour, name, value)
    server.behaviour.close_after_messages = 2  # right after the first words
    error = await stream_error(make_tts())
    assert (error.kind, error.recoverable) == (kind, recoverable)
    assert words in str(error) and error.provider == "tts:elevenlabs"
    assert server.speeches == []  # a refusal after the handshake is not retried over HTTP


async def test_a_refused_key_closes_the_socket_with_1008(make_tts: Make, server: ElevenLabsServer) -> None:
    error = await stream_error(make_tts(api_key="xi-wrong-key-0000"))
    assert (error.kind, error.recoverable) == (ErrorKind.AUTH, False) and "1008" in str(error)


async def test_a_socket_closed_mid_audio_is_a_recoverable_server_error(
    make_tts: Make, server: ElevenLabsServer
) -> None:
    server.behaviour.close_after_chunks = 2
    server.behaviour.close_code = 1011
    stream = make_tts().stream()
    stream.push_text("A sentence long enough for a few chunks of audio. ")
    stream.end_input()
    got: list[object] = []
    with pytest.raises(ProviderError) as caught:
        async for audio in stream:
            got.append(audio)
    await stream.aclose()
    assert got and caught.value.kind is ErrorKind.SERVER and caught.value.recoverable


async def test_a_handshake_refused_for_the_key_does_not_fall_back(make_tts: Make, server: ElevenLabsServer) -> None:
    server.behaviour.handshake_status = 401
    error = await stream_error(make_tts())
    assert (error.kind, error.recoverable) == (ErrorKind.AUTH, False) and "handshake refused: HTTP 401" in str(error)
    assert server.speeches == []


async def test_a_socket_the_model_cannot_use_falls_back_to_http(make_tts: Make, server: ElevenLabsServer) -> None:
    server.behaviour.handshake_status = 403  # as for a model the socket does not serve
    tts = make_tts()
    for _ in range(2):
        stream = tts.stream()
        stream.push_text("Hello there. How are you?")
        stream.end_input()
        out = [audio async for audio in stream]
        await stream.aclose()
        assert stream.transport == "http"
        assert [a.text for a in out if a.text] == ["Hello there.", "How are you?"] and out[-1].segment_end
    assert len(server.sockets) == 1  # the second stream went straight to HTTP
    assert [r.body["text"] for r in server.speeches] == ["Hello there.", "How are you?"] * 2
    await tts.aclose()


async def test_websocket_only_reports_the_refusal(make_tts: Make, server: ElevenLabsServer) -> None:
    server.behaviour.handshake_status = 403
    error = await stream_error(make_tts(transport="websocket"))
    assert error.kind is ErrorKind.AUTH and "handshake refused: HTTP 403" in str(error)
    assert server.speeches == []


async def test_a_missing_key_names_the_settings(make_tts: Make, server: ElevenLabsServer) -> None:
    tts = make_tts(api_key=None)
    for error in (await stream_error(tts), await synthesize_error(tts)):
        assert (error.kind, error.recoverable) == (ErrorKind.AUTH, False)
        assert "VOCALIS_TTS_ELEVENLABS_API_KEY" in str(error) and "ELEVENLABS_API_KEY" in str(error)
    assert server.sockets == [] and server.speeches == []
    await tts.aclose()


async def test_the_key_may_come_from_elevenlabs_api_key(
    make_tts: Make, server: ElevenLabsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELEVENLABS_API_KEY", API_KEY)
    tts = make_tts(api_key=None)
    assert [f async for f in tts.synthesize("Hi there.")]
    assert server.speeches[0].headers["xi-api-key"] == API_KEY
    await tts.aclose()


async def test_an_unreachable_server_is_a_recoverable_connection_error(make_tts: Make) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    tts = make_tts(base_url=f"http://127.0.0.1:{port}", timeout=5)
    for error in (await stream_error(tts), await synthesize_error(tts)):
        assert (error.kind, error.recoverable) == (ErrorKind.CONNECTION, True)
    await tts.aclose()


@pytest.mark.parametrize(
    ("status", "body", "kind", "recoverable"),
    [
        (401, detail("invalid_api_key", "Invalid API key"), ErrorKind.AUTH, False),
        (401, detail("quota_exceeded", QUOTA), ErrorKind.AUTH, False),
        (400, detail("voice_not_found", "A voice with that ID was not found."), ErrorKind.BAD_REQUEST, False),
        (
            422,
            {"detail": [{"loc": ["body", "text"], "msg": "field required", "type": "missing"}]},
            ErrorKind.BAD_REQUEST,
            False,
        ),
        (429, detail("too_many_concurrent_requests", "Too many requests"), ErrorKind.RATE_LIMIT, True),
        (500, {}, ErrorKind.SERVER, True),
        (503, "<html>unavailable</html>", ErrorKind.SERVER, True),
    ],
)
async def test_http_errors_are_mapped(
    make_tts: Make, server: ElevenLabsServer, status: int, body: Any, kind: ErrorKind, recoverable: bool
) -> None:
    server.behaviour.http_status, server.behaviour.http_body = status, body
    tts = make_tts()
    error = await synthesize_error(tts)
    assert (error.kind, error.recoverable) == (kind, recoverable) and f"HTTP {status}" in str(error)
    await tts.aclose()


async def test_a_dropped_http_response_is_a_lost_connection(make_tts: Make, server: ElevenLabsServer) -> None:
    server.behaviour.http_drop_after = 20_000
    tts = make_tts()
    frames = []
    with pytest.raises(ProviderError) as caught:
        async for frame in tts.synthesize("A sentence that is cut off in the middle of its audio."):
            frames.append(frame)
    assert frames and caught.value.kind is ErrorKind.CONNECTION and caught.value.recoverable
    assert "mid-audio" in str(caught.value)
    await tts.aclose()


async def test_an_echoed_key_never_reaches_the_error(make_tts: Make, server: ElevenLabsServer) -> None:
    server.behaviour.close_after_messages = 2
    server.behaviour.close_reason = f"Invalid API key {API_KEY}"
    server.behaviour.http_status = 401
    server.behaviour.http_body = detail("invalid_api_key", f"Invalid API key: {API_KEY}")
    tts = make_tts()
    for error in (await stream_error(tts), await synthesize_error(tts)):
        assert error.kind is ErrorKind.AUTH and API_KEY not in str(error)
    await tts.aclose()
