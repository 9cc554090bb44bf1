"""Word timings from the character alignment: on the frames of their sentence, from its first sample."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from elevenlabs_server import MS_PER_CHAR, ElevenLabsServer

from vocalis.providers.tts import SynthesizedAudio, WordTiming
from vocalis_elevenlabs import ElevenLabsTTS
from vocalis_elevenlabs.ledger import TextLedger
from vocalis_elevenlabs.protocol import Alignment
from vocalis_elevenlabs.timeline import AudioTimeline
from vocalis_elevenlabs.words import WordClock

RATE = 8000
FRAME = 160  # 20 ms


def pcm(ms: int) -> bytes:
    return b"\x01\x00" * (ms * RATE // 1000)


def aligned(text: str, start_ms: int = 0, ms_per_char: int = 10) -> Alignment:
    starts = tuple(float(start_ms + i * ms_per_char) for i in range(len(text)))
    return Alignment(tuple(text), starts, tuple(float(ms_per_char) for _ in text))


def ledger_of(text: str) -> TextLedger:
    ledger = TextLedger()
    ledger.push(text)
    ledger.end()
    return ledger


def by_sentence(out: list[SynthesizedAudio]) -> dict[str, list[tuple[str, int, int]]]:
    """Each sentence's words (in ms), gathered from its frames: the labelled one and those after it."""
    words: dict[str, list[tuple[str, int, int]]] = {}
    label = ""
    for audio in out:
        label = audio.text or label
        words.setdefault(label, []).extend((w.word, round(w.start * 1000), round(w.end * 1000)) for w in audio.words)
    return words


def test_each_sentence_carries_its_words_timed_from_its_first_frame() -> None:
    timeline = AudioTimeline(ledger_of("One two. Three four."), RATE, FRAME)
    out = timeline.add(pcm(200), aligned("One two. Three four."))
    out += timeline.finish()
    # The second sentence's first frame starts at 80 ms, where "two." ends: its times count from there.
    assert by_sentence(out) == {
        "One two.": [("One", 0, 30), ("two.", 40, 80)],
        "Three four.": [("Three", 10, 60), ("four.", 70, 120)],
    }
    assert all(isinstance(w, WordTiming) for a in out for w in a.words)


def test_a_word_goes_out_once_its_last_character_is_aligned() -> None:
    # Alignment on every chunk, as with sync_alignment: "two" ends in the second chunk.
    timeline = AudioTimeline(ledger_of("One two three."), RATE, FRAME)
    first = timeline.add(pcm(70), aligned(" One tw", 0, 10))
    assert [w.word for a in first for w in a.words] == ["One"]
    second = timeline.add(pcm(80), aligned("o three.", 0, 10))  # from this chunk's start, at 70 ms
    rest = timeline.finish()
    words = [(w.word, round(w.start * 1000), round(w.end * 1000)) for a in [*first, *second, *rest] for w in a.words]
    # Each word exactly once, in order; " One" starts after the leading space.
    assert words == [("One", 10, 40), ("two", 50, 80), ("three.", 90, 150)]
    assert [w.word for a in second for w in a.words] == ["two", "three."]


def test_a_character_left_out_ends_its_word_where_the_next_one_starts() -> None:
    timeline = AudioTimeline(ledger_of("Go now ✓. Then stop."), RATE, FRAME)
    out = timeline.add(pcm(300), aligned(" Go now. Then stop."))
    out += timeline.finish()
    words = by_sentence(out)
    # "✓" was not said but the "." after it was: the word is timed by that ".".
    assert words["Go now ✓."] == [("Go", 10, 30), ("now", 40, 70), ("✓.", 70, 80)]
    # The second sentence's frames start where "✓." ends, 10 ms before its "T".
    assert words["Then stop."] == [("Then", 10, 50), ("stop.", 60, 110)]


def test_no_alignment_no_words() -> None:
    timeline = AudioTimeline(ledger_of("One two. Three four."), RATE, FRAME)
    out = timeline.add(pcm(200), None) + timeline.finish()
    assert all(a.words == () for a in out) and timeline.late_words == 0


def test_words_of_a_sentence_whose_frames_are_out_are_dropped() -> None:
    ledger = ledger_of("One two. Three four.")
    clock = WordClock(ledger, 1000)
    first = clock.start_group([0], origin=0)
    second = clock.start_group([1], origin=90)
    clock.advance(list(range(0, 200, 10)), list(range(10, 210, 10)))
    # A frame of the second sentence goes out first: the first's words have no frame left.
    assert [w.word for w in clock.take(second)] == ["Three", "four."]
    assert clock.take(first) == () and clock.late == 2
    assert clock.take(None) == ()


@pytest.mark.parametrize("chunk_ms", [20, 30, 70])
def test_word_timings_match_the_alignment_whatever_the_chunking(chunk_ms: int) -> None:
    text = "Sure, here is the plan. First we pack."
    spoken = " " + text
    timeline = AudioTimeline(ledger_of(text), RATE, FRAME)
    out: list[SynthesizedAudio] = []
    total = len(spoken) * 10
    for start in range(0, total, chunk_ms):
        span = [i for i in range(len(spoken)) if start <= i * 10 < start + chunk_ms]
        alignment = Alignment(
            tuple(spoken[i] for i in span), tuple(float(i * 10 - start) for i in span), tuple(10.0 for _ in span)
        )
        out += timeline.add(pcm(min(chunk_ms, total - start)), alignment)
    out += timeline.finish()
    # The second sentence's first frame starts at 240 ms, where "plan." ends; "First" at 250 ms.
    assert by_sentence(out) == {
        "Sure, here is the plan.": [("Sure,", 10, 60), ("here", 70, 110), ("is", 120, 140), ("the", 150, 180),
                                    ("plan.", 190, 240)],
        "First we pack.": [("First", 10, 60), ("we", 70, 90), ("pack.", 100, 150)],
    }  # fmt: skip


@pytest.mark.parametrize("sync_alignment", [True, False])
async def test_a_stream_s_frames_carry_the_words_the_server_aligned(
    make_tts: Callable[..., ElevenLabsTTS], server: ElevenLabsServer, sync_alignment: bool
) -> None:
    server.behaviour.chunk_ms = 60
    stream = make_tts(sync_alignment=sync_alignment).stream()
    for token in ["Hello", " there", ", my", " friend.", " How", " are", " you", " today?"]:
        stream.push_text(token)
    stream.end_input()
    out = [audio async for audio in stream]
    await stream.aclose()
    ms = MS_PER_CHAR
    # The server speaks " Hello there, my friend." then " How are you today?", 20 ms a character;
    # each sentence's frames start with the space before it.
    assert by_sentence(out) == {
        "Hello there, my friend.": [("Hello", ms, 6 * ms), ("there,", 7 * ms, 13 * ms), ("my", 14 * ms, 16 * ms),
                                    ("friend.", 17 * ms, 24 * ms)],
        "How are you today?": [("How", ms, 4 * ms), ("are", 5 * ms, 8 * ms), ("you", 9 * ms, 12 * ms),
                               ("today?", 13 * ms, 19 * ms)],
    }  # fmt: skip
    # Each word rides on a frame that starts no later than the word ends.
    at = start = 0.0
    for audio in out:
        if audio.text:
            start = at
        assert all(start + w.end >= at - 1e-9 for w in audio.words)
        at += audio.frame.duration
