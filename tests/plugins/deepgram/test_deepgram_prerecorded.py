"""DeepgramSTT.recognize() over the pre-recorded endpoint: request shape, reply, errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from deepgram_helpers import utterance
from deepgram_listen_server import ListenServer

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.stt import SpeechEventType
from vocalis.testing.conformance import silence
from vocalis_deepgram import DeepgramSTT


async def test_an_utterance_is_posted_as_a_wav_with_the_settings(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT]
) -> None:
    frames, text = utterance(2)
    listen.behaviour.default = text
    stt = make_stt(model="nova-3-medical", keyterms=["Tokyo"], smart_format=False)
    event = await stt.recognize(frames, language="en-GB")
    assert event.type is SpeechEventType.FINAL_TRANSCRIPT
    assert (event.text, event.language) == (text, "en-GB")
    assert 0 < event.confidence <= 1 and event.end_time > 2.0
    (upload,) = listen.uploads
    assert upload["content_type"] == "audio/wav"
    assert upload["params"] == {
        "model": "nova-3-medical",
        "smart_format": "false",
        "punctuate": "true",
        "language": "en-GB",
        "keyterm": "Tokyo",
    }


async def test_silence_and_nothing_make_no_request(listen: ListenServer, make_stt: Callable[..., DeepgramSTT]) -> None:
    stt = make_stt()
    assert (await stt.recognize([])).text == ""
    assert (await stt.recognize(silence(1.0))).text == ""
    assert listen.uploads == []


@pytest.mark.parametrize(
    ("status", "kind", "recoverable"),
    [
        (400, ErrorKind.BAD_REQUEST, False),
        (401, ErrorKind.AUTH, False),
        (402, ErrorKind.AUTH, False),
        (429, ErrorKind.RATE_LIMIT, True),
        (500, ErrorKind.SERVER, True),
        (503, ErrorKind.SERVER, True),
    ],
)
async def test_errors_are_mapped_by_status(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT], status: int, kind: ErrorKind, recoverable: bool
) -> None:
    listen.reset(status=status)
    stt = make_stt()
    with pytest.raises(ProviderError) as info:
        await stt.recognize(utterance(0)[0])
    error = info.value
    assert (error.kind, error.recoverable, error.provider) == (kind, recoverable, "stt:deepgram")
    assert f"HTTP {status}" in str(error) and "SCRIPTED" in str(error)


async def test_a_key_echoed_by_the_server_never_shows(listen: ListenServer) -> None:
    key = "dg-echoed-key-0b9e4d7a2c51"
    stt = DeepgramSTT(_env_file=None, api_key=key, base_url=listen.url)
    with pytest.raises(ProviderError) as info:
        await stt.recognize(utterance(0)[0])
    await stt.aclose()
    assert info.value.kind is ErrorKind.AUTH and key not in str(info.value) and key not in repr(stt)


async def test_prewarm_checks_the_key(listen: ListenServer, make_stt: Callable[..., DeepgramSTT]) -> None:
    await make_stt().prewarm()
    with pytest.raises(ProviderError) as info:
        await make_stt(api_key="dg-not-the-key-8c2f1e").prewarm()
    assert info.value.kind is ErrorKind.AUTH and not info.value.recoverable
