"""DeepgramTTS over HTTP (``POST /v1/speak``): request shape, raw PCM out, errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from deepgram_server_base import API_KEY, tone
from deepgram_speak_server import SpeakServer

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis_deepgram import DeepgramTTS


async def _audio(tts: DeepgramTTS, text: str, *, one_request: bool = True) -> bytes:
    frames = [frame async for frame in tts.synthesize(text)]
    assert all(f.sample_rate == 24_000 and f.channels == 1 for f in frames)
    if one_request:
        assert all(len(f.data) == 960 for f in frames[:-1]), "20 ms frames, whatever the chunks"
    return b"".join(f.data for f in frames)


async def test_the_request_is_what_the_api_requires(speak: SpeakServer, make_tts: Callable[..., DeepgramTTS]) -> None:
    tts = make_tts(model="aura-2-andromeda-en")
    audio = await _audio(tts, "Hello there. How are you today?")
    assert audio == tone("Hello there. How are you today?"), "raw PCM, nothing lost, nothing added"
    (request,) = speak.requests
    assert request["params"] == {
        "model": "aura-2-andromeda-en",
        "encoding": "linear16",
        "sample_rate": "24000",
        "container": "none",
    }
    assert request["body"] == {"text": "Hello there. How are you today?"}
    assert request["headers"]["Authorization"] == f"Token {API_KEY}"
    assert request["headers"]["Content-Type"] == "application/json"


async def test_a_wav_header_is_not_played(speak: SpeakServer, make_tts: Callable[..., DeepgramTTS]) -> None:
    tts = make_tts(extra_params={"container": "wav"})
    assert await _audio(tts, "With a header.") == tone("With a header.")


async def test_long_text_is_sent_in_pieces_within_the_limit(
    speak: SpeakServer, make_tts: Callable[..., DeepgramTTS]
) -> None:
    speak.reset(chunk_delay=0.0)
    text = "This sentence is here to make the text long. " * 100
    await _audio(make_tts(), text, one_request=False)
    sizes = [len(r["body"]["text"]) for r in speak.requests]
    assert len(sizes) == 3 and all(size <= 2000 for size in sizes)
    assert " ".join(r["body"]["text"] for r in speak.requests) == text.strip()


@pytest.mark.parametrize(
    ("status", "kind", "recoverable"),
    [
        (400, ErrorKind.BAD_REQUEST, False),
        (401, ErrorKind.AUTH, False),
        (402, ErrorKind.AUTH, False),
        (429, ErrorKind.RATE_LIMIT, True),
        (500, ErrorKind.SERVER, True),
    ],
)
async def test_errors_are_mapped_by_status(
    speak: SpeakServer, make_tts: Callable[..., DeepgramTTS], status: int, kind: ErrorKind, recoverable: bool
) -> None:
    speak.reset(status=status)
    with pytest.raises(ProviderError) as info:
        await _audio(make_tts(), "Hello.")
    error = info.value
    assert (error.kind, error.recoverable, error.provider) == (kind, recoverable, "tts:deepgram")
    assert f"HTTP {status}" in str(error)


async def test_a_reply_that_stalls_is_a_recoverable_stall(
    speak: SpeakServer, make_tts: Callable[..., DeepgramTTS]
) -> None:
    speak.reset(first_byte_delay=3.0)
    with pytest.raises(ProviderError) as info:
        await _audio(make_tts(timeout=0.3), "Hello.")
    assert info.value.recoverable and info.value.kind in (ErrorKind.STALLED, ErrorKind.TIMEOUT)


async def test_a_wrong_key_never_shows(speak: SpeakServer) -> None:
    key = "dg-wrong-tts-key-5d1c9a7e"
    tts = DeepgramTTS(_env_file=None, api_key=key, base_url=speak.url)
    with pytest.raises(ProviderError) as info:
        await _audio(tts, "Hello.")
    await tts.aclose()
    assert info.value.kind is ErrorKind.AUTH and key not in str(info.value)


async def test_a_missing_key_names_the_variables() -> None:
    tts = DeepgramTTS(_env_file=None)
    with pytest.raises(ProviderError) as info:
        await _audio(tts, "Hello.")
    assert "VOCALIS_TTS_DEEPGRAM_API_KEY" in str(info.value) and "DEEPGRAM_API_KEY" in str(info.value)
    assert not info.value.recoverable
