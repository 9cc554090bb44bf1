"""DeepgramSTT's live stream when the connection fails: reconnection with the
unacknowledged audio resent (no final lost, none twice), and the failures that
end the stream, mapped by close code and HTTP status."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from deepgram_helpers import Recorder, push, quiet, utterance
from deepgram_listen_server import ListenServer

from vocalis.providers.base import ErrorKind
from vocalis_deepgram import DeepgramSTT


async def test_a_drop_mid_utterance_resends_the_audio_and_loses_nothing(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT]
) -> None:
    frames, text = utterance(0)
    listen.reset(default=text, drop_after=1.0, drop_code=1011, drop_reason="NET-0000")
    stream = make_stt().stream()
    recorder = Recorder(stream).start()
    await push(stream, frames)
    await quiet(stream, 0.6)
    stream.flush()
    stream.end_input()
    await recorder.done()
    await stream.aclose()

    assert recorder.error is None
    assert recorder.spoken_finals() == [text], "one final, whole, once"
    first, second = listen.connections
    assert first.close_code == 1011
    # No final came before the drop: the new connection hears everything again.
    pushed = b"".join(f.data for f in frames) + bytes(round(0.6 * 32_000))
    assert bytes(second.audio) == pushed
    assert recorder.types().count("start_of_speech") == 1


async def test_a_drop_after_a_final_resends_only_what_no_final_covers(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT]
) -> None:
    (first_frames, one), (second_frames, two) = utterance(1), utterance(2)
    # The second connection is cut without a close frame, in the middle of the second sentence.
    listen.reset(transcripts=[one, two], drop_after=4.2, drop_code=None)
    stream = make_stt().stream()
    recorder = Recorder(stream).start()
    await push(stream, first_frames)
    await quiet(stream, 0.8)
    await push(stream, second_frames)
    await quiet(stream, 0.8)
    stream.end_input()
    await recorder.done()
    await stream.aclose()

    assert recorder.error is None
    assert recorder.spoken_finals() == [one, two]
    first, second = listen.connections
    finals = [m for m in first.sent if m["type"] == "Results" and m["is_final"]]
    acked = round((finals[-1]["start"] + finals[-1]["duration"]) * 16_000) * 2
    silence = bytes(round(0.8 * 32_000))
    pushed = b"".join(f.data for f in first_frames) + silence + b"".join(f.data for f in second_frames) + silence
    assert bytes(second.audio) == pushed[acked:], "exactly the audio no final covered, then the rest"
    events = [e for e in recorder.events if e.text == two and e.type.value == "final_transcript"]
    assert events[0].start_time >= acked / 32_000 - 1e-6, "timestamps stay on the stream's clock"


async def test_too_many_drops_in_a_row_fail_the_stream_recoverably(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT]
) -> None:
    frames, text = utterance(3)
    listen.reset(default=text, drop_after=0.3, drops=10, drop_code=1011, drop_reason="NET-0000")
    stream = make_stt(max_reconnects=2).stream()
    recorder = Recorder(stream).start()
    await push(stream, frames)
    await recorder.done()
    await stream.aclose()
    assert recorder.error is not None and recorder.error.recoverable
    assert recorder.error.kind is ErrorKind.TIMEOUT
    assert len(listen.connections) == 3


async def test_undecodable_audio_ends_the_stream_but_keeps_the_words_already_final(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT]
) -> None:
    (first_frames, one), (second_frames, _) = utterance(4), utterance(5)
    listen.reset(transcripts=[one], drop_after=3.6, drop_code=1008, drop_reason="DATA-0000")
    stream = make_stt().stream()
    recorder = Recorder(stream).start()
    await push(stream, first_frames)
    await quiet(stream, 0.8)
    await push(stream, second_frames)
    await recorder.done()
    await stream.aclose()
    assert recorder.spoken_finals() == [one]
    error = recorder.error
    assert error is not None and not error.recoverable and error.kind is ErrorKind.BAD_REQUEST
    assert "1008" in str(error) and "DATA-0000" in str(error)
    assert len(listen.connections) == 1, "the same audio would be refused again: no reconnection"


@pytest.mark.parametrize(
    ("status", "kind", "recoverable"),
    [
        (400, ErrorKind.BAD_REQUEST, False),
        (402, ErrorKind.AUTH, False),
        (403, ErrorKind.AUTH, False),
        (429, ErrorKind.RATE_LIMIT, True),
        (503, ErrorKind.SERVER, True),
    ],
)
async def test_a_refused_upgrade_is_mapped_by_status(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT], status: int, kind: ErrorKind, recoverable: bool
) -> None:
    listen.reset(status=status)
    stream = make_stt(max_reconnects=1).stream()
    recorder = Recorder(stream).start()
    await recorder.done()
    await stream.aclose()
    error = recorder.error
    assert error is not None and (error.kind, error.recoverable) == (kind, recoverable)
    assert f"HTTP {status}" in str(error) and "SCRIPTED" in str(error)
    assert stream.connections == (2 if recoverable else 1)  # type: ignore[attr-defined]


async def test_a_wrong_key_is_refused_with_401_and_never_shows(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT]
) -> None:
    wrong = "dg-wrong-key-3a7f9c1e2b8d"
    stream = make_stt(api_key=wrong).stream()
    recorder = Recorder(stream).start()
    await recorder.done()
    await stream.aclose()
    error = recorder.error
    assert error is not None and error.kind is ErrorKind.AUTH and not error.recoverable
    assert "HTTP 401" in str(error) and "INVALID_AUTH" in str(error) and wrong not in str(error)
    assert stream.connections == 1  # type: ignore[attr-defined]


async def test_a_missing_key_is_a_clear_error_naming_the_variables() -> None:
    stt = DeepgramSTT(_env_file=None)  # the hosted API, no key anywhere
    stream = stt.stream()
    recorder = Recorder(stream).start()
    await recorder.done()
    await stream.aclose()
    error = recorder.error
    assert error is not None and error.kind is ErrorKind.AUTH and not error.recoverable
    assert "VOCALIS_STT_DEEPGRAM_API_KEY" in str(error) and "DEEPGRAM_API_KEY" in str(error)
    with pytest.raises(type(error)) as info:
        await stt.recognize(utterance(0)[0])
    assert "VOCALIS_STT_DEEPGRAM_API_KEY" in str(info.value)
    await stt.aclose()


async def test_the_connection_refused_is_recoverable() -> None:
    stt = DeepgramSTT(_env_file=None, api_key="k" * 20, base_url="http://127.0.0.1:9", max_reconnects=0)
    stream = stt.stream()
    recorder = Recorder(stream).start()
    await recorder.done()
    await stream.aclose()
    error = recorder.error
    assert error is not None and error.kind is ErrorKind.CONNECTION and error.recoverable
