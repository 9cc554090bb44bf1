"""The plugin's pure parts: server messages, the text ledger, the audio timeline, close codes."""

from __future__ import annotations

import base64
import json

import pytest

from vocalis.providers.base import ErrorKind
from vocalis_elevenlabs import ElevenLabsTTS
from vocalis_elevenlabs.errors import close_error
from vocalis_elevenlabs.ledger import TextLedger, split_after
from vocalis_elevenlabs.protocol import Alignment, ProtocolError, parse_server_message, websocket_url
from vocalis_elevenlabs.timeline import AudioTimeline

RATE = 8000
FRAME = 160  # 20 ms


def pcm(ms: int) -> bytes:
    return b"\x01\x00" * (ms * RATE // 1000)


def aligned(text: str, start_ms: int = 0, ms_per_char: int = 10) -> Alignment:
    chars = tuple(text)
    starts = tuple(float(start_ms + i * ms_per_char) for i in range(len(chars)))
    return Alignment(chars, starts, tuple(float(ms_per_char) for _ in chars))


def test_server_messages_are_decoded() -> None:
    audio = base64.b64encode(b"\x00\x01\x02\x03").decode()
    alignment = {"chars": ["H", "i"], "charStartTimesMs": [0, 5], "charDurationsMs": [5, 5]}
    message = parse_server_message(json.dumps({"audio": audio, "isFinal": None, "alignment": alignment}))
    assert message.audio == b"\x00\x01\x02\x03" and not message.is_final
    assert message.alignment == Alignment(("H", "i"), (0.0, 5.0), (5.0, 5.0))
    snake = {"chars": ["H"], "char_start_times_ms": [0], "chars_durations_ms": [5]}
    assert parse_server_message(json.dumps({"audio": None, "normalizedAlignment": snake})).normalized_alignment
    assert parse_server_message('{"audio": null, "isFinal": true}').is_final
    error = parse_server_message(json.dumps({"message": "idle", "error": "input_timeout_exceeded", "code": 1008}))
    assert (error.error, error.error_message) == ("input_timeout_exceeded", "idle")
    nested = parse_server_message(json.dumps({"error": {"status": "quota_exceeded", "message": "no credits"}}))
    assert (nested.error, nested.error_message) == ("quota_exceeded", "no credits")


@pytest.mark.parametrize("raw", ['{"audio": 5}', '{"audio": "%%%"}'])
def test_audio_that_cannot_be_decoded_is_a_protocol_error(raw: str) -> None:
    with pytest.raises(ProtocolError):
        parse_server_message(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '{"audio": null, "alignment": {"chars": ["a"], "charStartTimesMs": [0, 1]}}',
        '{"audio": null, "alignment": {"chars": [1], "charStartTimesMs": [0]}}',
        '{"audio": null, "alignment": {"chars": null, "charStartTimesMs": null, "charsDurationsMs": null}}',
        '{"audio": null, "alignment": "soon"}',
    ],
)
def test_what_cannot_be_used_is_ignored_not_fatal(raw: str) -> None:
    message = parse_server_message(raw)
    assert message.ignored and message.alignment is None and not message.is_final and message.error is None


def test_alignment_entries_of_several_characters_are_spread() -> None:
    raw = {"audio": None, "alignment": {"chars": ["Hi", " ", "!"], "charStartTimesMs": [0, 20, 30],
                                        "charDurationsMs": [20, 10, 5]}}  # fmt: skip
    message = parse_server_message(json.dumps(raw))
    assert message.alignment == Alignment(("H", "i", " ", "!"), (0.0, 0.0, 20.0, 30.0), (0.0, 20.0, 10.0, 5.0))
    assert not message.ignored


def test_urls_keep_the_voice_in_one_path_segment() -> None:
    url = websocket_url("https://api.example/", "a/b c", {"model_id": "m", "sync_alignment": "true"})
    assert url == "wss://api.example/v1/text-to-speech/a%2Fb%20c/stream-input?model_id=m&sync_alignment=true"


def test_the_ledger_sends_words_and_flushes_sentences() -> None:
    ledger = TextLedger()
    sent = [json.loads(m) for t in ["Hi th", "ere. How", " are", " you"] for m in ledger.push(t)]
    sent += [json.loads(m) for m in ledger.end()]
    assert sent == [
        {"text": "Hi "},
        {"text": "there. ", "flush": True},
        {"text": "How "},
        {"text": "are "},
        {"text": "you ", "flush": True},
        {"text": ""},
    ]
    assert [(s.text, s.start, s.end) for s in ledger.segments] == [("Hi there.", 0, 8), ("How are you", 8, 17)]
    assert "".join(ledger.chars) == "Hithere.Howareyou"
    assert ledger.end() == [] and ledger.flush() == []


def test_the_ledger_cuts_a_segment_the_server_already_speaks() -> None:
    ledger = TextLedger()
    ledger.push("A long first clause with no end in sig")
    ledger.cut_sent()  # audio came for what was sent: "... end in "
    assert [s.text for s in ledger.segments] == ["A long first clause with no end in"]
    ledger.push("ht. Then more.")
    ledger.end()
    # "sight." is shorter than a sentence may be: it joins the next.
    assert [s.text for s in ledger.segments] == ["A long first clause with no end in", "sight. Then more."]


def test_split_after_counts_only_visible_characters() -> None:
    assert split_after("  ab c d", 3) == ("  ab c", " d")
    assert split_after("abc", 0) == ("", "abc") and split_after("ab", 5) == ("ab", "")


def test_frames_start_a_new_label_where_the_alignment_puts_it() -> None:
    ledger = TextLedger()
    ledger.push("One two. Three four.")
    ledger.end()
    timeline = AudioTimeline(ledger, RATE, FRAME)
    # One chunk for both sentences; "One two." ends with its "." at 80 ms.
    out = timeline.add(pcm(200), aligned("One two. Three four."))
    out += timeline.finish()
    assert [a.text for a in out if a.text] == ["One two.", "Three four."]
    # The frame ending at 80 ms ends the first segment; the pause after it
    # leads into the second, whose first frame follows at once.
    first_end = next(i for i, a in enumerate(out) if a.segment_end)
    assert sum(round(a.frame.duration * 1000) for a in out[: first_end + 1]) == 80
    assert out[first_end + 1].text == "Three four."
    assert [i for i, a in enumerate(out) if a.segment_end] == [first_end, len(out) - 1]
    assert b"".join(a.frame.data for a in out) == pcm(200)


def test_a_pause_after_a_sentence_waits_for_the_next_one() -> None:
    ledger = TextLedger()
    ledger.push("One two. ")
    ledger.flush()
    timeline = AudioTimeline(ledger, RATE, FRAME)
    # "One two." ends at 80 ms; 40 ms of pause follow, before any next text.
    out = timeline.add(pcm(120), aligned("One two.", 0, 10))
    assert out[-1].segment_end and sum(a.frame.duration for a in out) == pytest.approx(0.08)
    # No frame of the ended sentence follows its end: the pause waits, and
    # leads into the next sentence once its audio comes.
    ledger.push("Three four.")
    ledger.end()
    more = timeline.add(pcm(110), aligned(" Three four.", 0, 10)) + timeline.finish()
    assert more[0].text == "Three four." and [a.segment_end for a in more].count(True) == 1
    assert b"".join(a.frame.data for a in out + more) == pcm(230)


def test_audio_no_sentence_can_be_placed_on_does_not_stall() -> None:
    ledger = TextLedger()
    ledger.push("One two. ")
    ledger.flush()
    timeline = AudioTimeline(ledger, RATE, FRAME)
    assert timeline.add(pcm(80), aligned("One two.", 0, 10))[-1].segment_end
    # Audio the alignment cannot place goes out once it outgrows any pause (1 s), unlabelled.
    assert timeline.add(pcm(900), None) == []
    late = timeline.add(pcm(200), None)
    assert not any(a.text for a in late) and sum(a.frame.duration for a in late) >= 1.0


def test_a_character_the_server_leaves_out_does_not_shift_the_rest() -> None:
    ledger = TextLedger()
    ledger.push("Go ✓ now. Then stop.")
    ledger.end()
    timeline = AudioTimeline(ledger, RATE, FRAME)
    # No "✓", a leading space, and a "!" that was never sent.
    out = timeline.add(pcm(300), aligned(" Go now! Then stop."))
    out += timeline.finish()
    starts = [sum(round(a.frame.duration * 1000) for a in out[:i]) for i, a in enumerate(out) if a.text]
    assert starts == [0, 90]  # "T" is the 10th character of " Go now! Then stop."
    assert "".join(t.char for t in timeline.timings) == "GonowThenstop."  # "✓" and "." were not said


def test_odd_byte_chunks_and_a_segment_complete_before_the_next() -> None:
    ledger = TextLedger()
    ledger.push("Hi. ")
    ledger.flush()
    timeline = AudioTimeline(ledger, RATE, FRAME)
    data = pcm(30)
    out = timeline.add(data[:81], aligned("Hi.", 0, 10))
    out += timeline.add(data[81:], None)
    # "." ends at 30 ms, the end of the audio: the last frame goes out now, ending the segment.
    assert [a.segment_end for a in out] == [False, True] and b"".join(a.frame.data for a in out) == data
    assert timeline.finish() == []


@pytest.mark.parametrize(
    ("code", "reason", "kind", "recoverable"),
    [
        (None, "", ErrorKind.CONNECTION, True),
        (1000, "", ErrorKind.CONNECTION, True),
        (1008, "Invalid API key", ErrorKind.AUTH, False),
        (1008, "Unusual activity detected. Free Tier usage disabled.", ErrorKind.AUTH, False),
        (1008, "Could not parse input message, make sure it is a json", ErrorKind.BAD_REQUEST, False),
        (1008, "Have not received a new text input within the timeout of 20 seconds.", ErrorKind.TIMEOUT, True),
        (1008, "something else", ErrorKind.UNKNOWN, True),
        (1011, "", ErrorKind.SERVER, True),
        (4000, "", ErrorKind.UNKNOWN, True),
    ],
)
def test_close_codes(code: int | None, reason: str, kind: ErrorKind, recoverable: bool) -> None:
    error = close_error(ElevenLabsTTS(_env_file=None), code, reason, None)
    assert (error.kind, error.recoverable) == (kind, recoverable)
