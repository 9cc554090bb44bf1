"""OpenAISTT against a local transcriptions server: upload shape, formats, errors, timeouts."""

from __future__ import annotations

import asyncio
import gc
import io
import json
import math
import socket
import warnings
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from audio_server import API_KEY, AudioServer

from vocalis.audio import AudioFrame, concat, resample
from vocalis.providers.adapters import SegmentedSTTStream
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.stt import SpeechEventType
from vocalis.testing.conformance import STTConformance, frames_of, silence
from vocalis_openai import OpenAISTT

SPEECH = Path(__file__).resolve().parents[2] / "data" / "speech"


def utterance(index: int = 0) -> tuple[list[AudioFrame], str]:
    item = json.loads((SPEECH / "manifest.json").read_text())[index]
    with wave.open(str(SPEECH / item["file"])) as wav:
        assert wav.getframerate() == 16_000
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    return frames_of(samples, 16_000), item["text"]


@pytest.fixture(scope="module")
def running_server() -> Iterator[AudioServer]:
    with AudioServer() as server:
        yield server


@pytest.fixture
def server(running_server: AudioServer) -> AudioServer:
    running_server.reset()
    return running_server


def make_stt(server: AudioServer, **overrides: object) -> OpenAISTT:
    settings = {"base_url": server.base_url, "api_key": API_KEY, "max_retries": 0, **overrides}
    return OpenAISTT(**settings)


def forget_dead_loop_client(provider: OpenAISTT) -> None:
    """Drop a client left on a loop that ``asyncio.run`` already closed.

    Its sockets can no longer be closed through their (dead) loop; collect
    them now, quietly, rather than as warnings in some later test.
    """
    asyncio.run(provider.aclose())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


class TestOpenAISTTConformance(STTConformance):
    max_wer = 0.0  # the server answers with the exact expected text

    @pytest.fixture
    def provider(self, server: AudioServer) -> Iterator[OpenAISTT]:
        provider = make_stt(server)
        yield provider
        forget_dead_loop_client(provider)

    @pytest.fixture
    def speech(self, server: AudioServer) -> tuple[list[AudioFrame], str]:
        frames, text = utterance()
        server.behaviour.transcript = text
        return frames, text


async def test_upload_is_a_wav_of_the_utterance(server: AudioServer) -> None:
    frames, text = utterance(1)
    server.behaviour.transcript = text
    stt = make_stt(server, prompt="Restaurant booking.", temperature=0.2)
    event = await stt.recognize(frames, language="en")
    await stt.aclose()

    assert event.type is SpeechEventType.FINAL_TRANSCRIPT
    assert (event.text, event.language) == (text, "en")
    joined = concat(frames)
    assert joined is not None
    assert event.end_time == pytest.approx(joined.duration)
    [upload] = server.uploads
    assert upload.headers["Authorization"] == f"Bearer {API_KEY}"
    assert upload.fields == {
        "model": "gpt-4o-mini-transcribe",
        "response_format": "json",
        "language": "en",
        "prompt": "Restaurant booking.",
        "temperature": "0.2",
    }
    assert upload.filename and upload.filename.endswith(".wav")
    assert upload.file_type == "audio/wav"
    assert upload.wav == {
        "rate": 16_000,
        "channels": 1,
        "width": 2,
        "frames": joined.samples_per_channel,
    }
    with wave.open(io.BytesIO(upload.file)) as wav:
        assert wav.readframes(wav.getnframes()) == joined.data


async def test_optional_fields_are_left_out(server: AudioServer) -> None:
    stt = make_stt(server)
    await stt.recognize(utterance()[0])
    await stt.aclose()
    assert set(server.uploads[0].fields) == {"model", "response_format"}


async def test_language_setting_is_sent_and_the_argument_wins(server: AudioServer) -> None:
    stt = make_stt(server, language="de")
    assert (await stt.recognize(utterance()[0])).language == "de"
    assert (await stt.recognize(utterance()[0], language="fr")).language == "fr"
    await stt.aclose()
    assert [u.fields["language"] for u in server.uploads] == ["de", "fr"]


async def test_stereo_48k_is_sent_as_16k_mono(server: AudioServer) -> None:
    mono = concat(utterance()[0])
    assert mono is not None
    at_48k = resample(mono, 48_000).to_numpy()
    stereo = np.stack([at_48k, at_48k], axis=1)
    frames = [AudioFrame(stereo[i : i + 960].tobytes(), 48_000, 2) for i in range(0, len(stereo), 960)]
    stt = make_stt(server)
    await stt.recognize(frames)
    await stt.aclose()
    wav = server.uploads[0].wav
    assert (wav["rate"], wav["channels"]) == (16_000, 1)
    assert abs(wav["frames"] - mono.samples_per_channel) <= 16


async def test_mixed_rates_in_one_utterance(server: AudioServer) -> None:
    frames = frames_of(_tone(0.5, 16_000), 16_000) + frames_of(_tone(0.5, 8_000), 8_000)
    stt = make_stt(server)
    event = await stt.recognize(frames)
    await stt.aclose()
    assert event.text == "hello world"
    assert server.uploads[0].wav["rate"] == 16_000
    assert abs(server.uploads[0].wav["frames"] - 16_000) <= 16


async def test_nothing_to_hear_makes_no_request(server: AudioServer) -> None:
    stt = make_stt(server)
    cases = [
        [],
        [AudioFrame(b"", 16_000)],
        frames_of(_tone(0.05, 16_000), 16_000),  # under the API's 0.1 s minimum
        silence(1.0),
        silence(1.0, 48_000),
    ]
    for frames in cases:
        event = await stt.recognize(frames, language="en")
        assert (event.type, event.text, event.language) == (
            SpeechEventType.FINAL_TRANSCRIPT,
            "",
            "en",
        )
    await stt.aclose()
    assert server.uploads == []


async def test_whisper_uses_verbose_json_and_drops_silence_phrases(server: AudioServer) -> None:
    stt = make_stt(server, model="whisper-1")
    speech = await stt.recognize(utterance()[0])
    hiss = np.random.default_rng(1).integers(-100, 100, 16_000).astype(np.int16)
    quiet = await stt.recognize(frames_of(hiss, 16_000))
    await stt.aclose()

    assert [u.fields["response_format"] for u in server.uploads] == ["verbose_json"] * 2
    assert speech.text == "hello world"
    assert speech.language == "english"
    assert speech.confidence == pytest.approx(math.exp(-0.2))
    assert quiet.text == ""  # the server's " Thank you." segment is flagged as no speech


async def test_text_response_format(server: AudioServer) -> None:
    stt = make_stt(server, model="whisper-1", response_format="text")
    event = await stt.recognize(utterance()[0])
    await stt.aclose()
    assert server.uploads[0].fields["response_format"] == "text"
    assert event.text == "hello world"


async def test_interims_are_free_unless_enabled(server: AudioServer) -> None:
    frames = utterance()[0]
    quiet = make_stt(server)
    event = await quiet.recognize_interim(frames)
    assert (event.type, event.text) == (SpeechEventType.INTERIM_TRANSCRIPT, "")
    assert server.uploads == []

    chatty = make_stt(server, interims=True)
    event = await chatty.recognize_interim(frames)
    assert (event.type, event.text) == (SpeechEventType.INTERIM_TRANSCRIPT, "hello world")
    assert len(server.uploads) == 1
    await quiet.aclose()
    await chatty.aclose()


async def test_segmented_stream_sends_one_request_per_utterance(server: AudioServer) -> None:
    frames, text = utterance()
    server.behaviour.transcript = text
    stt = make_stt(server)
    stream = SegmentedSTTStream(stt)
    stream.start_segment()
    for frame in frames:
        stream.push_frame(frame)
    stream.flush()
    stream.end_input()
    events = [event async for event in stream]
    await stream.aclose()
    await stt.aclose()
    assert [(e.type, e.text) for e in events] == [(SpeechEventType.FINAL_TRANSCRIPT, text)]
    assert len(server.uploads) == 1  # no interim requests with interims off


@pytest.mark.parametrize(
    ("status", "recoverable", "message", "kind"),
    [
        (401, False, "Incorrect API key", ErrorKind.AUTH),
        (403, False, "scripted 403", ErrorKind.AUTH),
        (429, True, "scripted 429", ErrorKind.RATE_LIMIT),
        (500, True, "scripted 500", ErrorKind.SERVER),
        (503, True, "scripted 503", ErrorKind.SERVER),
    ],
)
async def test_http_errors(server: AudioServer, status: int, recoverable: bool, message: str, kind: ErrorKind) -> None:
    # ``message`` is the test server's own wording.
    if status == 401:
        stt = make_stt(server, api_key="sk-wrong")
    else:
        server.behaviour.status = status
        stt = make_stt(server)
    with pytest.raises(ProviderError) as caught:
        await stt.recognize(utterance()[0])
    await stt.aclose()
    assert caught.value.provider == "stt:openai"
    assert caught.value.recoverable is recoverable and caught.value.kind is kind
    assert f"HTTP {status}" in str(caught.value) and message in str(caught.value)
    assert "sk-wrong" not in str(caught.value)


async def test_bad_request_is_not_recoverable(server: AudioServer) -> None:
    stt = make_stt(server, response_format="verbose_json")  # gpt-4o models take json only
    with pytest.raises(ProviderError) as caught:
        await stt.recognize(utterance()[0])
    await stt.aclose()
    assert not caught.value.recoverable and caught.value.kind is ErrorKind.BAD_REQUEST
    assert "HTTP 400" in str(caught.value)


async def test_timeout_is_a_recoverable_error(server: AudioServer) -> None:
    server.behaviour.hang = True
    stt = make_stt(server, timeout=0.3)
    with pytest.raises(ProviderError) as caught:
        await asyncio.wait_for(stt.recognize(utterance()[0]), 10)
    await stt.aclose()
    assert caught.value.recoverable and caught.value.kind is ErrorKind.TIMEOUT
    assert "/audio/transcriptions timed out: no answer within 0.3 s" in str(caught.value)


async def test_connection_refused_is_a_recoverable_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stt = OpenAISTT(base_url=f"http://127.0.0.1:{port}/v1", api_key=API_KEY, max_retries=0)
    with pytest.raises(ProviderError) as caught:
        await stt.recognize(utterance()[0])
    await stt.aclose()
    assert caught.value.recoverable and caught.value.provider == "stt:openai"
    assert caught.value.kind is ErrorKind.CONNECTION
    assert str(caught.value).startswith(f"stt:openai: connection failed to http://127.0.0.1:{port}/")


async def test_cancelling_recognize_stops_the_request(server: AudioServer) -> None:
    server.behaviour.hang = True
    stt = make_stt(server)
    task = asyncio.create_task(stt.recognize(utterance()[0]))
    assert await asyncio.to_thread(server.received.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    await stt.aclose()


def test_one_provider_across_event_loops(server: AudioServer) -> None:
    stt = make_stt(server)
    frames = utterance()[0]
    with warnings.catch_warnings():
        # The second loop replaces the client of the first, whose loop is gone.
        warnings.simplefilter("ignore", ResourceWarning)
        for _ in range(2):
            assert asyncio.run(stt.recognize(frames)).text == "hello world"
        gc.collect()
    forget_dead_loop_client(stt)
    assert len(server.uploads) == 2


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_STT_OPENAI_MODEL", "whisper-1")
    monkeypatch.setenv("VOCALIS_STT_OPENAI_API_KEY", "sk-env-secret")
    monkeypatch.setenv("VOCALIS_STT_OPENAI_INTERIMS", "true")
    stt = OpenAISTT()
    assert stt.model_name == "whisper-1" and stt.settings.interims
    assert "sk-env-secret" not in repr(stt)
    assert (stt.name, stt.sample_rate, stt.streaming) == ("openai", 16_000, False)


def _tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
