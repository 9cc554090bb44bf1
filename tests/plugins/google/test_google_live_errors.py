"""GeminiLive failures, sorted by close code, HTTP status and error message into ProviderErrors."""

from __future__ import annotations

import logging
import socket

import pytest
from gemini_live_helpers import E, is_done, make_live, read_until
from gemini_live_server import API_KEY, LiveServer, LiveTurn

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis_google import GeminiLive


async def refused(model: GeminiLive) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await model.connect(instructions="Be brief.")
    assert caught.value.provider == "realtime:google"
    return caught.value


async def test_a_bad_key_is_closed_with_1007_and_is_an_auth_error(live: LiveServer) -> None:
    error = await refused(make_live(live, api_key="AIza-wrong-0000000000000000000"))
    assert (error.kind, error.recoverable) == (ErrorKind.AUTH, False)
    assert "1007" in str(error) and "API key not valid" in str(error) and "wrong" not in str(error)


async def test_no_key_names_the_variables(live: LiveServer) -> None:
    error = await refused(GeminiLive(base_url=live.url, _env_file=None))
    assert (error.kind, error.recoverable) == (ErrorKind.AUTH, False)
    assert "VOCALIS_REALTIME_GOOGLE_API_KEY" in str(error) and live.handshakes == []


async def test_an_unknown_model_is_refused(live: LiveServer) -> None:
    error = await refused(make_live(live, model="gemini-0.1-nothing"))
    assert not error.recoverable and "not found" in str(error)


@pytest.mark.parametrize(
    ("close", "kind", "recoverable"),
    [
        ((1007, "Request contains an invalid argument."), ErrorKind.BAD_REQUEST, False),
        # Close reasons the service sends, as reported by its users:
        ((1007, "API key expired. Please renew the API key."), ErrorKind.AUTH, False),
        (
            (1008, "Request had invalid authentication credentials. Expected OAuth 2 access token"),
            ErrorKind.AUTH,
            False,
        ),
        ((1008, "Operation is not implemented, or supported, or enabled."), ErrorKind.BAD_REQUEST, False),
        ((1008, "Requested entity was not found."), ErrorKind.BAD_REQUEST, False),
        (
            (1011, "You exceeded your current quota, please check your plan and billing details."),
            ErrorKind.RATE_LIMIT,
            True,
        ),
        ((1008, "Permission denied: consumer has no access."), ErrorKind.AUTH, False),
        ((1011, "RESOURCE_EXHAUSTED: too many concurrent sessions."), ErrorKind.RATE_LIMIT, True),
        ((1011, "Internal error encountered."), ErrorKind.SERVER, True),
        ((1013, "Try again later."), ErrorKind.RATE_LIMIT, True),
    ],
)
async def test_setup_refusals_by_close_code(
    live: LiveServer, close: tuple[int, str], kind: ErrorKind, recoverable: bool
) -> None:
    live.refuse_setup = close
    error = await refused(make_live(live))
    assert (error.kind, error.recoverable) == (kind, recoverable)
    assert str(close[0]) in str(error) and close[1] in str(error)


@pytest.mark.parametrize(
    ("status", "kind", "recoverable"),
    [(503, ErrorKind.SERVER, True), (429, ErrorKind.RATE_LIMIT, True), (403, ErrorKind.AUTH, False)],
)
async def test_refused_handshakes(live: LiveServer, status: int, kind: ErrorKind, recoverable: bool) -> None:
    live.handshake_status = status
    error = await refused(make_live(live))
    assert (error.kind, error.recoverable) == (kind, recoverable) and str(status) in str(error)


async def test_nothing_listening() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await refused(GeminiLive(api_key=API_KEY, base_url=f"http://127.0.0.1:{port}", _env_file=None))
    assert (error.kind, error.recoverable) == (ErrorKind.CONNECTION, True)


async def test_error_messages_mid_session(live: LiveServer) -> None:
    live.turns = [LiveTurn(reply="Hi.")]
    model = make_live(live)
    rt = await model.connect(instructions="Be brief.")
    connection = live.connections[0]
    await connection.emit({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}})
    error_event = await read_until(rt, lambda e: e.type is E.ERROR)
    assert isinstance(error_event[-1].error, ProviderError) and error_event[-1].error.kind is ErrorKind.SERVER
    await rt.create_response("Say hi.")
    await read_until(rt, is_done)  # the session goes on
    await connection.emit({"error": {"code": 400, "message": "Invalid argument.", "status": "INVALID_ARGUMENT"}})
    with pytest.raises(ProviderError) as caught:
        async for _ in rt:
            pass
    assert (caught.value.kind, caught.value.recoverable) == (ErrorKind.BAD_REQUEST, False)
    assert rt.errors[0].kind is ErrorKind.SERVER
    await rt.aclose()


async def test_a_close_reason_echoing_the_key_is_redacted(live: LiveServer) -> None:
    live.refuse_setup = (1008, f"API key {API_KEY} is not valid")
    error = await refused(make_live(live))
    assert API_KEY not in str(error) and error.kind is ErrorKind.AUTH


async def test_after_aclose_requests_fail_and_closing_twice_is_fine(live: LiveServer) -> None:
    model = make_live(live)
    rt = await model.connect(instructions="Be brief.")
    await model.aclose()
    await model.aclose()
    with pytest.raises(ProviderError):
        await rt.create_response("Hi.")
    rt.push_audio(__import__("vocalis.audio", fromlist=["AudioFrame"]).AudioFrame.silence(0.02, 16_000))
    assert [e async for e in rt] == []


async def test_the_handshake_log_has_no_key(live: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="websockets.client")
    rt = await make_live(live).connect(instructions="Be brief.")
    await rt.aclose()
    assert "x-goog-api-key" in caplog.text and API_KEY not in caplog.text
