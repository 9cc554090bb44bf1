"""ElevenLabsTTS.synthesize() and HTTP streams: request shape, streamed audio, close, prewarm."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from elevenlabs_server import API_KEY, VOICE, ElevenLabsServer, speech_pcm

import vocalis_elevenlabs.tts as tts_module
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis_elevenlabs import ElevenLabsTTS

Make = Callable[..., ElevenLabsTTS]
TEXT = "Hello there. How are you today?"


async def test_request_shape_and_exact_audio(make_tts: Make, server: ElevenLabsServer) -> None:
    tts = make_tts(
        model="eleven_multilingual_v2",
        output_format="pcm_22050",
        stability=0.3,
        speed=0.9,
        language_code="de",
        apply_text_normalization="auto",
        seed=42,
        enable_logging=False,
    )
    frames = [frame async for frame in tts.synthesize(f"  {TEXT} ")]
    await tts.aclose()
    (request,) = server.speeches
    assert request.voice == VOICE and request.headers["xi-api-key"] == API_KEY
    assert request.query == {"output_format": "pcm_22050", "enable_logging": "false"}
    assert request.body == {
        "text": TEXT,
        "model_id": "eleven_multilingual_v2",
        "voice_settings": {"stability": 0.3, "speed": 0.9, "similarity_boost": 0.75},
        "language_code": "de",
        "apply_text_normalization": "auto",
        "seed": 42,
    }
    # Chunks of odd sizes come back as whole 20 ms frames of exactly the audio sent.
    assert b"".join(f.data for f in frames) == speech_pcm(TEXT, 22_050)
    assert {f.sample_rate for f in frames} == {22_050}
    assert all(len(f.data) == 2 * 441 for f in frames[:-1])


async def test_defaults_send_only_what_is_needed(make_tts: Make, server: ElevenLabsServer) -> None:
    tts = make_tts()
    assert [f async for f in tts.synthesize("Hi.")]
    await tts.aclose()
    assert server.speeches[0].query == {"output_format": "pcm_24000"}
    assert server.speeches[0].body == {"text": "Hi.", "model_id": "eleven_flash_v2_5"}


async def test_nothing_to_say_makes_no_request(make_tts: Make, server: ElevenLabsServer) -> None:
    tts = make_tts()
    for text in ("", "   ", "... !?", "\u200b"):
        assert [f async for f in tts.synthesize(text)] == []
    await tts.aclose()
    assert server.speeches == []


async def test_closing_midway_closes_the_response(make_tts: Make, server: ElevenLabsServer) -> None:
    server.behaviour.http_endless = True
    tts = make_tts()
    frames = tts.synthesize(TEXT)
    await anext(frames)
    await frames.aclose()  # type: ignore[attr-defined]
    assert await asyncio.to_thread(server.http_disconnected.wait, 10)
    await tts.aclose()


async def test_an_http_stream_speaks_sentence_by_sentence(make_tts: Make, server: ElevenLabsServer) -> None:
    tts = make_tts(transport="http")
    stream = tts.stream()
    for token in ["Hello", " there.", " How", " are", " you", " today?"]:
        stream.push_text(token)
    stream.end_input()
    out = [audio async for audio in stream]
    await stream.aclose()
    await tts.aclose()
    assert stream.transport == "http" and server.sockets == []
    assert [r.body["text"] for r in server.speeches] == ["Hello there.", "How are you today?"]
    assert [a.text for a in out if a.text] == ["Hello there.", "How are you today?"]
    assert sum(a.segment_end for a in out) == 2 and out[-1].segment_end


async def test_pcm_labelled_as_mpeg_is_played(make_tts: Make, server: ElevenLabsServer) -> None:
    # The API's own description labels every format of this endpoint audio/mpeg:
    # the bytes decide (real MP3 is refused: test_elevenlabs_real_shapes).
    server.behaviour.http_content_type = "audio/mpeg"
    tts = make_tts()
    audio = b"".join([frame.data async for frame in tts.synthesize(TEXT)])
    await tts.aclose()
    assert audio == speech_pcm(TEXT, 24_000)


async def test_prewarm_checks_the_key_and_the_voice(make_tts: Make, server: ElevenLabsServer) -> None:
    tts = make_tts()
    await tts.prewarm()
    await tts.aclose()
    for overrides, kind in (
        ({"api_key": "xi-wrong-key-0000"}, ErrorKind.AUTH),
        ({"voice_id": "nobody"}, ErrorKind.BAD_REQUEST),
    ):
        other = make_tts(**overrides)
        with pytest.raises(ProviderError) as caught:
            await other.prewarm()
        await other.aclose()
        assert caught.value.kind is kind and not caught.value.recoverable


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_TTS_ELEVENLABS_API_KEY", "xi-env-key-12345678")
    monkeypatch.setenv("VOCALIS_TTS_ELEVENLABS_VOICE_ID", "v1")
    monkeypatch.setenv("VOCALIS_TTS_ELEVENLABS_OUTPUT_FORMAT", "pcm_16000")
    monkeypatch.setenv("VOCALIS_TTS_ELEVENLABS_CHUNK_LENGTH_SCHEDULE", "[60, 90]")
    tts = ElevenLabsTTS(_env_file=None)
    assert tts.api_key() == "xi-env-key-12345678" and "xi-env-key" not in repr(tts)
    assert (tts.settings.voice_id, tts.sample_rate, tts.settings.chunk_length_schedule) == ("v1", 16_000, [60, 90])
    assert tts.model_name == "eleven_flash_v2_5"
    with pytest.raises(ValueError):
        ElevenLabsTTS(chunk_length_schedule=[10], _env_file=None)
    with pytest.raises(ValueError):
        ElevenLabsTTS(base_url="api.example", _env_file=None)


async def test_a_text_over_the_models_limit_is_sent_in_pieces(
    make_tts: Make, server: ElevenLabsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The service refuses a request over its model's limit (max_character_limit_exceeded).
    monkeypatch.setattr(tts_module, "_DEFAULT_MAX_CHARS", 40)
    tts = make_tts(model="eleven_v3")
    text = "First a sentence that is short. Then one more of them! And a last one without an end"
    audio = b"".join([frame.data async for frame in tts.synthesize(text)])
    await tts.aclose()
    sent = [r.body["text"] for r in server.speeches]
    assert sent == ["First a sentence that is short.", "Then one more of them!", "And a last one without an end"]
    assert all(len(piece) <= 40 for piece in sent) and " ".join(sent) == text
    assert audio == b"".join(speech_pcm(piece, 24_000) for piece in sent)
