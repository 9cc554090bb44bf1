"""DeepgramSTT's live stream against the listen server: request shape, events,
Finalize, KeepAlive, CloseStream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from deepgram_helpers import Recorder, push, quiet, utterance
from deepgram_listen_server import ListenServer
from deepgram_server_base import API_KEY

from vocalis.providers.stt import SpeechEventType
from vocalis_deepgram import DeepgramSTT


async def test_the_upgrade_and_the_audio_are_what_the_api_requires(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT]
) -> None:
    frames, text = utterance(1)
    listen.behaviour.default = text
    stt = make_stt(model="nova-2", language="en-US", keyterms=["Boston", "table"], endpointing=250)
    stream = stt.stream()
    recorder = Recorder(stream).start()
    await push(stream, frames)
    stream.flush()
    stream.end_input()
    await recorder.done()
    await stream.aclose()

    (conn,) = listen.connections
    assert conn.headers["Authorization"] == f"Token {API_KEY}"
    assert conn.params == {
        "model": "nova-2",
        "encoding": "linear16",
        "sample_rate": "16000",
        "channels": "1",
        "interim_results": "true",
        "endpointing": "250",
        "utterance_end_ms": "1000",
        "vad_events": "true",
        "smart_format": "true",
        "punctuate": "true",
        "language": "en-US",
        "keyterm": "Boston",
    }
    assert [value for name, value in conn.query if name == "keyterm"] == ["Boston", "table"]
    assert bytes(conn.audio) == b"".join(f.data for f in frames), "the audio must arrive whole and in order"
    assert conn.controls == ["Finalize", "CloseStream"]
    assert conn.close_code == 1000
    assert recorder.spoken_finals() == [text]
    assert recorder.error is None


async def test_interims_then_one_final_per_utterance_with_speech_boundaries(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT]
) -> None:
    (first, one), (second, two) = utterance(0), utterance(2)
    listen.behaviour.transcripts = [one, two]
    stream = make_stt().stream()
    recorder = Recorder(stream).start()
    await push(stream, first)
    await quiet(stream, 1.3)  # endpointing, then UtteranceEnd
    await push(stream, second)
    await quiet(stream, 1.3)
    stream.end_input()
    await recorder.done()
    await stream.aclose()

    assert recorder.spoken_finals() == [one, two]
    kinds = [t for t in recorder.types() if t != "interim_transcript"]
    assert kinds == ["start_of_speech", "final_transcript", "end_of_speech"] * 2
    interims = [e for e in recorder.events if e.type is SpeechEventType.INTERIM_TRANSCRIPT]
    assert interims and all(one.startswith(e.text) or two.startswith(e.text) for e in interims)
    finals = [e for e in recorder.events if e.type is SpeechEventType.FINAL_TRANSCRIPT]
    assert 0 <= finals[0].start_time < finals[0].end_time <= finals[1].start_time < finals[1].end_time
    assert finals[0].language == "en" and 0 < finals[0].confidence <= 1


async def test_a_flush_sends_finalize_and_its_answer_is_the_segments_final(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT]
) -> None:
    frames, text = utterance(3)
    listen.behaviour.default = text
    stream = make_stt(endpointing=None, utterance_end_ms=None).stream()
    recorder = Recorder(stream).start()
    await push(stream, frames)
    stream.flush()  # the VAD heard the end: no endpointing needed
    await recorder.until(lambda: recorder.finals())
    assert recorder.finals() == [text]
    assert listen.connections[0].sent[-1].get("from_finalize") is True
    assert listen.connections[0].params["endpointing"] == "false"
    assert "utterance_end_ms" not in listen.connections[0].params
    await stream.aclose()


async def test_an_unanswered_finalize_still_gets_a_final(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT]
) -> None:
    """Deepgram answers Finalize only when it holds audio: the segment gets an (empty) final anyway."""
    frames, text = utterance(4)
    listen.behaviour.default = text
    stream = make_stt(finalize_timeout=0.2).stream()
    recorder = Recorder(stream).start()
    stream.flush()  # nothing sent yet: nothing held, no answer
    await recorder.until(lambda: recorder.finals() == [""])
    await push(stream, frames)
    stream.flush()
    await recorder.until(lambda: recorder.spoken_finals() == [text])
    await stream.aclose()
    assert listen.connections[0].controls == ["Finalize", "Finalize"]


async def test_keepalive_holds_an_idle_connection_open(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT]
) -> None:
    frames, text = utterance(5)
    listen.behaviour.default = text
    listen.behaviour.idle_timeout = 0.6  # the real service waits 10 s
    stream = make_stt(keepalive_interval=0.15).stream()
    recorder = Recorder(stream).start()
    await quiet(stream, 0.1)
    await asyncio.sleep(1.5)  # the microphone is muted: no audio at all
    await push(stream, frames)
    stream.end_input()
    await recorder.done()
    await stream.aclose()
    (conn,) = listen.connections
    assert conn.controls.count("KeepAlive") >= 3 and conn.controls[-1] == "CloseStream"
    assert recorder.spoken_finals() == [text] and recorder.error is None


async def test_without_keepalive_the_idle_timeout_closes_and_the_stream_reconnects(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT]
) -> None:
    frames, text = utterance(6)
    listen.behaviour.default = text
    listen.behaviour.idle_timeout = 1.0
    stream = make_stt(keepalive_interval=9.0).stream()
    recorder = Recorder(stream).start()
    await quiet(stream, 0.1)
    # Nothing on the wire: 1011 NET-0001, a recoverable timeout.
    await recorder.until(lambda: len(listen.connections) >= 2)
    assert listen.connections[0].close_code == 1011
    await push(stream, frames)
    stream.end_input()
    await recorder.done()
    await stream.aclose()
    assert recorder.spoken_finals() == [text] and recorder.error is None


async def test_end_input_closes_with_closestream_and_keeps_the_last_words(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT]
) -> None:
    frames, text = utterance(7)
    listen.behaviour.default = text
    stream = make_stt().stream()
    recorder = Recorder(stream).start()
    await push(stream, frames)
    stream.end_input()  # no flush, no pause: only CloseStream finalises the words
    await recorder.done()
    await stream.aclose()
    assert recorder.spoken_finals() == [text]
    assert recorder.types()[-1] == "end_of_speech"
    (conn,) = listen.connections
    assert conn.controls == ["CloseStream"] and conn.sent[-1]["type"] == "Metadata"
