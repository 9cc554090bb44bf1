"""The API key leaks nowhere: not in reprs, not in errors quoting a server that echoes it,
not in the session's events, not in the log (websockets logs the handshake's headers)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import quote

import pytest
from cartesia_server import API_KEY, CartesiaServer

from vocalis import Agent, CascadingPipeline
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.testing import Conversation, FakeLLM, FakeSTT, FakeVAD, OutputCapture
from vocalis_cartesia import CartesiaTTS

SECRETS = [API_KEY, quote(API_KEY, safe="")]


def test_the_key_is_masked_in_reprs() -> None:
    tts = CartesiaTTS(api_key=API_KEY, api_key_in_query=True, _env_file=None)
    shown = [repr(tts), str(tts.settings), repr(tts.settings), str(tts.settings.model_dump())]
    assert not any(API_KEY in text for text in shown)


async def test_an_echoed_key_is_taken_out_of_errors_events_and_logs(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    server.refuse_status, server.echo_key = 401, True
    websockets_log = logging.getLogger("websockets.client")
    level = websockets_log.level
    websockets_log.setLevel(logging.DEBUG)  # the handshake's headers are logged at DEBUG
    try:
        with OutputCapture() as capture:
            tts = make_tts(api_key_in_query=True)  # the key is in the URL too
            with pytest.raises(ProviderError) as stream_error:
                await tts.prewarm()
            with pytest.raises(ProviderError) as http_error:
                [frame async for frame in tts.synthesize("Hello there.")]
            pipeline = CascadingPipeline(
                stt=FakeSTT(["hello"]), llm=FakeLLM(["Hi there, friend."]), tts=tts, vad=FakeVAD(), turn_detector=None
            )
            async with Conversation(Agent("Be brief."), pipeline) as conv:
                capture.watch(conv.session)
                await conv.user_speaks(0.6)
                await conv.wait_for(lambda: bool(conv.errors()), timeout=30)
            for error in (stream_error.value, http_error.value):
                capture.add("error", f"{error!s} {error!r} {error.args!r}")
                assert (error.kind, error.recoverable) == (ErrorKind.AUTH, False)
                assert "[redacted]" in str(error), "the server's message is quoted, without the key"
            capture.add("errors", repr(conv.errors()))
    finally:
        websockets_log.setLevel(level)
    assert server.handshakes and server.bytes_requests, "the key was sent (and echoed)"
    assert any("Invalid API key" in e["message"] for e in conv.errors())
    capture.assert_absent(SECRETS)


async def test_the_debug_log_of_a_working_turn_has_no_key(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    """``logging.basicConfig(level=logging.DEBUG)``: a root handler at DEBUG, no logger's level touched."""
    with OutputCapture() as capture:
        tts = make_tts(api_key_in_query=True)  # the key in the handshake's URL and its headers
        stream = tts.stream()
        stream.push_text("Hello there. How are you?")
        stream.end_input()
        assert [audio async for audio in stream]
        await stream.aclose()
        assert [frame async for frame in tts.synthesize("Hello there.")]
        await tts.aclose()
    capture.assert_absent(SECRETS)
    # The handshake was logged, with the key taken out: the check above is not vacuous.
    logged = capture.outputs()["logging"]
    assert "websockets.client > X-API-Key: [redacted]" in logged, logged[:2000]
    assert "websockets.client > GET /tts/websocket?" in logged and "api_key=[redacted]" in logged
