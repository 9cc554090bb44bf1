"""ElevenLabsTTS.stream() over the input-streaming socket: what is sent, how audio is labelled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest
from elevenlabs_server import API_KEY, MS_PER_CHAR, VOICE, ElevenLabsServer

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.tts import SynthesizedAudio
from vocalis_elevenlabs import ElevenLabsStream, ElevenLabsTTS

Make = Callable[..., ElevenLabsTTS]
TOKENS = ["Hello", " there", ", my", " friend.", " How", " are", " you", " today?"]


async def speak(tts: ElevenLabsTTS, tokens: Sequence[str]) -> tuple[list[SynthesizedAudio], ElevenLabsStream]:
    stream = tts.stream()
    for token in tokens:
        stream.push_text(token)
    stream.end_input()
    out = [audio async for audio in stream]
    await stream.aclose()
    return out, stream


def texts(out: list[SynthesizedAudio]) -> list[str]:
    return [a.text for a in out if a.text]


def seconds_before(out: list[SynthesizedAudio], label: str) -> float:
    index = next(i for i, a in enumerate(out) if a.text == label)
    return sum(a.frame.duration for a in out[:index])


async def test_words_go_out_as_written_and_each_sentence_is_flushed(make_tts: Make, server: ElevenLabsServer) -> None:
    tts = make_tts(
        model="eleven_turbo_v2_5",
        output_format="pcm_16000",
        stability=0.4,
        similarity_boost=0.8,
        style=0.1,
        use_speaker_boost=True,
        speed=1.1,
        chunk_length_schedule=[50, 80],
        language_code="en",
        seed=7,
        inactivity_timeout=30,
        apply_text_normalization="off",
        enable_logging=False,
    )
    out, stream = await speak(tts, TOKENS)
    assert stream.transport == "websocket"
    (socket,) = server.sockets
    assert socket.voice == VOICE and socket.headers["xi-api-key"] == API_KEY
    assert socket.query == {
        "model_id": "eleven_turbo_v2_5",
        "output_format": "pcm_16000",
        "sync_alignment": "true",
        "inactivity_timeout": "30",
        "language_code": "en",
        "apply_text_normalization": "off",
        "enable_logging": "false",
        "seed": "7",
    }
    voice = {"stability": 0.4, "similarity_boost": 0.8, "style": 0.1, "use_speaker_boost": True, "speed": 1.1}
    assert socket.messages == [
        {"text": " ", "voice_settings": voice, "generation_config": {"chunk_length_schedule": [50, 80]}},
        {"text": "Hello "},
        {"text": "there, "},
        {"text": "my "},
        {"text": "friend. ", "flush": True},
        {"text": "How "},
        {"text": "are "},
        {"text": "you "},
        {"text": "today? ", "flush": True},
        {"text": ""},
    ]
    assert socket.generations == ["Hello there, my friend. ", "How are you today? "] and socket.final_sent
    # Every byte spoken, in 20 ms frames at the asked rate, labelled by sentence.
    assert b"".join(a.frame.data for a in out) == bytes(socket.audio)
    assert {a.frame.sample_rate for a in out} == {16_000}
    assert texts(out) == ["Hello there, my friend.", "How are you today?"]
    # The second sentence starts where the first one's last character ends
    # (the alignment's): the space the second generation begins with leads into it.
    first_generation = (1 + len("Hello there, my friend.")) * MS_PER_CHAR / 1000
    assert seconds_before(out, "How are you today?") == pytest.approx(first_generation)
    # The first sentence is marked complete where its last character ends.
    ends = [i for i, a in enumerate(out) if a.segment_end]
    assert ends[-1] == len(out) - 1
    assert sum(a.frame.duration for a in out[: ends[0] + 1]) == pytest.approx(first_generation)
    # The timings cover every character sent, from the stream's first sample.
    assert "".join(t.char for t in stream.timings) == "Hellothere,myfriend.Howareyoutoday?"
    assert stream.timings[0].start == pytest.approx(MS_PER_CHAR / 1000)
    await tts.aclose()


@pytest.mark.parametrize("durations_key", ["charsDurationsMs", "charDurationsMs"])
@pytest.mark.parametrize("sync_alignment", [True, False])
async def test_alignment_on_every_chunk_or_the_first_of_each_generation(
    make_tts: Make, server: ElevenLabsServer, durations_key: str, sync_alignment: bool
) -> None:
    server.behaviour.durations_key = durations_key
    server.behaviour.chunk_ms = 60
    out, stream = await speak(make_tts(sync_alignment=sync_alignment), TOKENS)
    assert server.sockets[0].query["sync_alignment"] == ("true" if sync_alignment else "false")
    assert texts(out) == ["Hello there, my friend.", "How are you today?"]
    first_generation = (1 + len("Hello there, my friend.")) * MS_PER_CHAR / 1000
    assert seconds_before(out, "How are you today?") == pytest.approx(first_generation)
    assert stream.timings[-1].end == pytest.approx(sum(a.frame.duration for a in out))


async def test_without_alignment_no_sentence_is_placed_before_it_is_played(
    make_tts: Make, server: ElevenLabsServer
) -> None:
    server.behaviour.alignment = False
    out, stream = await speak(make_tts(), TOKENS)
    assert stream.timings == []
    # The first sentence labels the start; the second, which cannot be placed,
    # only the last frame: it counts as heard only if everything played.
    assert out[0].text == "Hello there, my friend." and out[-1].text == "How are you today?"
    assert texts(out) == ["Hello there, my friend.", "How are you today?"] and out[-1].segment_end
    assert b"".join(a.frame.data for a in out) == bytes(server.sockets[0].audio)


async def test_audio_before_the_sentence_ends_is_labelled_with_what_was_sent(
    make_tts: Make, server: ElevenLabsServer
) -> None:
    words = "This sentence keeps going on past the point where the server starts speaking it".split()
    tts = make_tts(chunk_length_schedule=[50])
    stream = tts.stream()
    for word in words:
        stream.push_text(word + " ")
    first = await asyncio.wait_for(anext(stream), 10)  # spoken before its sentence ended
    stream.push_text("now. Done.")
    stream.end_input()
    out = [first, *[audio async for audio in stream]]
    await stream.aclose()
    generations = server.sockets[0].generations
    assert len(generations) == 2 and len(generations[0]) >= 50 and not generations[0].rstrip().endswith(".")
    assert first.text and " ".join(texts(out)).split() == [*words, "now.", "Done."]
    assert b"".join(a.frame.data for a in out) == bytes(server.sockets[0].audio)


async def test_auto_mode_sends_whole_sentences(make_tts: Make, server: ElevenLabsServer) -> None:
    out, _ = await speak(make_tts(auto_mode=True), TOKENS)
    socket = server.sockets[0]
    assert socket.query["auto_mode"] == "true"
    assert socket.messages[1:] == [
        {"text": "Hello there, my friend. ", "flush": True},
        {"text": "How are you today? ", "flush": True},
        {"text": ""},
    ]
    assert texts(out) == ["Hello there, my friend.", "How are you today?"]


@pytest.mark.parametrize(("output_format", "rate"), [("pcm_22050", 22_050), ("pcm_44100", 44_100)])
async def test_output_format_sets_the_rate(
    make_tts: Make, server: ElevenLabsServer, output_format: str, rate: int
) -> None:
    tts = make_tts(output_format=output_format, frame_ms=40)
    assert tts.sample_rate == rate
    out, _ = await speak(tts, ["Short and sweet."])
    assert {a.frame.sample_rate for a in out} == {rate}
    assert max(len(a.frame.data) for a in out) == 2 * rate * 40 // 1000


async def test_an_idle_socket_is_kept_alive(make_tts: Make, server: ElevenLabsServer) -> None:
    tts = make_tts(inactivity_timeout=2)  # a keep-alive every second
    stream = tts.stream()
    stream.push_text("Let me look that up. ")
    await asyncio.sleep(3.5)  # a long tool call: past the server's timeout
    stream.push_text("Found it.")
    stream.end_input()
    out = [audio async for audio in stream]
    await stream.aclose()
    assert texts(out) == ["Let me look that up.", "Found it."]
    assert {"text": " "} in server.sockets[0].messages


async def test_the_servers_input_timeout_is_a_recoverable_timeout(
    make_tts: Make, server: ElevenLabsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ElevenLabsTTS, "keep_alive_seconds", 60.0)  # no keep-alive
    stream = make_tts(inactivity_timeout=1).stream()
    stream.push_text("Waiting for the rest ")
    with pytest.raises(ProviderError) as caught:
        async for _ in stream:
            pass
    await stream.aclose()
    error = caught.value
    assert error.kind is ErrorKind.TIMEOUT and error.recoverable and "input_timeout_exceeded" in str(error)


async def test_closing_midway_closes_the_socket_and_stops_the_generation(
    make_tts: Make, server: ElevenLabsServer
) -> None:
    server.behaviour.endless = True
    server.behaviour.chunk_interval = 0.01
    stream = make_tts().stream()
    stream.push_text("A reply that would go on for a long time. ")
    await asyncio.wait_for(anext(stream), 10)
    await stream.aclose()
    socket = server.sockets[0]
    assert await asyncio.to_thread(socket.done.wait, 10)
    assert socket.closed_by_client and not socket.final_sent and not socket.ended
    sent = len(socket.audio)
    await asyncio.sleep(0.2)
    assert len(socket.audio) == sent  # nothing more generated


async def test_unspeakable_text_ends_quietly(make_tts: Make, server: ElevenLabsServer) -> None:
    out, _ = await speak(make_tts(), ["... ", "✓ "])
    assert texts(out) == []  # whatever the server made of it, no words were said
    assert server.sockets[0].messages[-1] == {"text": ""}
