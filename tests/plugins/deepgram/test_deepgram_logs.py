"""The key stays out of the standard library's log, and a refused key says what to check.

An application that turns on ``logging.basicConfig(level=logging.DEBUG)``
gets websockets' handshake log (each request header, ``Authorization: Token
<key>`` included, and each frame) and aiohttp's. The capture below is a root
handler at DEBUG, as ``basicConfig`` installs.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from deepgram_helpers import Recorder, push, utterance
from deepgram_listen_server import ListenServer
from deepgram_server_base import API_KEY
from deepgram_speak_server import SpeakServer

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.testing import OutputCapture
from vocalis_deepgram import DeepgramSTT, DeepgramTTS

WRONG_KEY = "dg-wrong-key-58c1e07d3b9a4f26"


async def _listen_once(stt: DeepgramSTT) -> Recorder:
    frames, _ = utterance(0)
    stream = stt.stream()
    recorder = Recorder(stream).start()
    await push(stream, frames)
    stream.end_input()
    await recorder.done()
    await stream.aclose()
    return recorder


async def _speak_once(tts: DeepgramTTS) -> int:
    stream = tts.stream()
    stream.push_text("Hello there. How are you?")
    stream.end_input()
    frames = [audio async for audio in stream]
    await stream.aclose()
    return len(frames)


async def test_no_key_in_the_debug_log_of_any_path(
    listen: ListenServer,
    speak: SpeakServer,
    make_stt: Callable[..., DeepgramSTT],
    make_tts: Callable[..., DeepgramTTS],
) -> None:
    frames, _ = utterance(0)
    with OutputCapture() as capture:
        stt, tts = make_stt(), make_tts()
        await stt.prewarm()  # GET /v1/projects
        assert (await _listen_once(stt)).spoken_finals()  # the listen WebSocket
        assert (await stt.recognize(frames)).text  # POST /v1/listen
        await tts.prewarm()  # a Speak WebSocket, kept
        assert await _speak_once(tts)  # the kept Speak WebSocket
        assert [frame async for frame in tts.synthesize("Hello there.")]  # POST /v1/speak
        # A refused key, which the server quotes back in its 401 (body and dg-error header).
        refused = await _listen_once(make_stt(api_key=WRONG_KEY, max_reconnects=0))
        wrong_tts = make_tts(api_key=WRONG_KEY)
        for attempt in (_speak_once(wrong_tts), wrong_tts.synthesize("Hi.").__anext__()):
            try:
                await attempt
            except ProviderError as exc:
                capture.add("errors", f"{exc!s} {exc!r}")
    assert refused.error is not None and refused.error.kind is ErrorKind.AUTH
    capture.add("errors", f"{refused.error!s} {refused.error!r}")
    capture.assert_absent([API_KEY, WRONG_KEY])
    # The handshakes were logged, with the key taken out: the check above is not vacuous.
    logged = capture.outputs()["logging"]
    assert len(re.findall(r"websockets\.client > Authorization: Token \[redacted\]", logged)) >= 3, logged[:2000]


async def test_a_refused_key_ends_with_the_variables_to_check(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT]
) -> None:
    recorder = await _listen_once(make_stt(api_key=WRONG_KEY, max_reconnects=0))
    error = recorder.error
    assert error is not None and (error.kind, error.recoverable) == (ErrorKind.AUTH, False)
    # The request id (for Deepgram's support) right after the status; the message
    # ends with the server's words and what to check.
    pattern = (
        r"stt:deepgram: HTTP 401 \(request [0-9a-f-]{36}\): INVALID_AUTH: Invalid credentials \(Token \[redacted\]\)"
        r"; check VOCALIS_STT_DEEPGRAM_API_KEY or DEEPGRAM_API_KEY"
    )
    assert re.fullmatch(pattern, str(error)), str(error)
