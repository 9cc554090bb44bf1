"""Word timestamps ride on the audio: each frame of a sentence carries the
:class:`WordTiming`\\ s of that sentence that came so far, in seconds from the
sentence's first audio (Cartesia times words on the context's audio)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cartesia_protocol import VOICED_SECONDS, WORD_SECONDS, speech_pcm, word_times
from cartesia_server import CartesiaServer

from vocalis.providers.tts import SynthesizedAudio, WordTiming
from vocalis_cartesia import CartesiaTTS
from vocalis_cartesia.segments import SegmentAssembler

FIRST, SECOND, THIRD = "Hello there, my friend.", "How are you doing today?", "Fine."


def sentences(out: list[SynthesizedAudio]) -> list[tuple[str, float, tuple[WordTiming, ...]]]:
    """(text, seconds, words) of each sentence, the words gathered from all its frames."""
    found: list[tuple[str, float, tuple[WordTiming, ...]]] = []
    for audio in out:
        if audio.text:
            found.append((audio.text, 0.0, ()))
        text, seconds, words = found[-1]
        found[-1] = (text, seconds + audio.frame.duration, words + audio.words)
    return found


def expected(text: str) -> list[tuple[str, float, float]]:
    return word_times(text)  # from the sentence's own start


def rounded(words: tuple[WordTiming, ...]) -> list[tuple[str, float, float]]:
    return [(w.word, round(w.start, 6), round(w.end, 6)) for w in words]


def as_tuples(stamps: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    return [(w, round(s, 6), round(e, 6)) for w, s, e in stamps]


async def test_frames_carry_each_sentences_words_from_its_own_start(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    stream = make_tts().stream()
    stream.push_text(f"{FIRST} {SECOND} ")
    stream.push_text(THIRD)
    stream.end_input()
    out = [audio async for audio in stream]
    await stream.aclose()

    got = sentences(out)
    assert [text for text, _, _ in got] == [FIRST, SECOND, THIRD]
    for text, seconds, words in got:
        assert seconds == pytest.approx(len(expected(text)) * WORD_SECONDS)
        assert rounded(words) == as_tuples(expected(text)), text
    # Words come with the audio that speaks them, not all at the end.
    first_words = [audio for audio in out if audio.words][0]
    assert first_words is not out[len(expected(FIRST)) * 6 - 1]
    # The stream's own list stays on the turn's timeline.
    assert stream.word_timestamps[4].start == pytest.approx(len(expected(FIRST)) * WORD_SECONDS)


async def test_without_timestamps_frames_carry_none(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    stream = make_tts(add_timestamps=False).stream()
    stream.push_text(f"{FIRST} {SECOND}")
    stream.end_input()
    out = [audio async for audio in stream]
    await stream.aclose()
    assert out and all(audio.words == () for audio in out)
    (context,) = server.context_list()
    assert all("add_timestamps" not in body and "use_normalized_timestamps" not in body for body in context.inputs)


async def test_normalized_timestamps_can_be_asked_for(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    stream = make_tts(normalized_timestamps=True).stream()
    stream.push_text(FIRST)
    stream.end_input()
    assert [audio async for audio in stream]
    await stream.aclose()
    (context,) = server.context_list()
    assert all(body["use_normalized_timestamps"] is True for body in context.inputs)


# -- the assembler, fed message by message in orders a real server may use ------------
RATE = 24_000


def assembler() -> SegmentAssembler:
    assembly = SegmentAssembler(RATE, 20)
    assembly.add_sentence(FIRST, "c", 1)
    assembly.add_sentence(SECOND, "c", 2)
    return assembly


def stamp(assembly: SegmentAssembler, flush_id: object, text: str, offset: float) -> None:
    times = word_times(text, offset)
    assembly.add_timestamps("c", flush_id, [w for w, _, _ in times], [s for _, s, _ in times], [e for *_, e in times])


def words_by_sentence(out: list[SynthesizedAudio]) -> list[list[tuple[str, float, float]]]:
    return [rounded(words) for _, _, words in sentences(out)]


FIRST_SECONDS = len(word_times(FIRST)) * WORD_SECONDS


def test_words_sent_before_their_audio_wait_for_its_first_frame() -> None:
    assembly, out = assembler(), []
    out += assembly.audio("c", 1, speech_pcm(FIRST)) + assembly.end_sentence("c", 1)
    stamp(assembly, 2, SECOND, FIRST_SECONDS)  # the second sentence's words, before its audio
    out += assembly.audio("c", 2, speech_pcm(SECOND))
    out += assembly.end_sentence("c", 2) + assembly.finish()
    assert words_by_sentence(out) == [[], as_tuples(expected(SECOND))]
    second_start = next(i for i, audio in enumerate(out) if audio.text == SECOND)
    assert out[second_start].words, "on the sentence's first frame"


def test_words_after_the_last_chunk_ride_on_the_held_last_frame() -> None:
    assembly, out = assembler(), []
    out += assembly.audio("c", 1, speech_pcm(FIRST))
    stamp(assembly, 1, FIRST, 0.0)  # after every chunk, before flush_done
    out += assembly.end_sentence("c", 1)
    assert out[-1].segment_end and rounded(out[-1].words) == as_tuples(expected(FIRST))


def test_words_timed_after_their_sentence_ended_are_not_given_to_the_next() -> None:
    assembly, out = assembler(), []
    out += assembly.audio("c", 1, speech_pcm(FIRST)) + assembly.end_sentence("c", 1)
    out += assembly.audio("c", 2, speech_pcm(SECOND)[:4800])
    stamp(assembly, 1, FIRST, 0.0)  # too late: the first sentence's frames are out
    out += assembly.audio("c", 2, speech_pcm(SECOND)[4800:]) + assembly.end_sentence("c", 2) + assembly.finish()
    assert words_by_sentence(out) == [[], []]
    assert assembly.late_words == len(expected(FIRST))


def test_untagged_words_go_to_the_sentence_their_time_falls_in() -> None:
    assembly, out = assembler(), []
    out += assembly.audio("c", None, speech_pcm(FIRST)) + assembly.end_sentence("c", None)
    out += assembly.audio("c", None, speech_pcm(SECOND)[:9600])
    stamp(assembly, None, FIRST + " " + SECOND, 0.0)  # one message over both sentences
    out += assembly.audio("c", None, speech_pcm(SECOND)[9600:]) + assembly.finish()
    first, second = words_by_sentence(out)
    assert first == [] and second == as_tuples(expected(SECOND))  # the first's frames were out already
    assert assembly.late_words == len(expected(FIRST))


def test_a_server_timing_each_flush_from_zero_is_read_alike() -> None:
    assembly, out = assembler(), []
    out += assembly.audio("c", 1, speech_pcm(FIRST))
    stamp(assembly, 1, FIRST, 0.0)
    out += assembly.end_sentence("c", 1) + assembly.audio("c", 2, speech_pcm(SECOND))
    stamp(assembly, 2, SECOND, 0.0)  # restarts at zero rather than at the sentence's place in the context
    out += assembly.end_sentence("c", 2) + assembly.finish()
    assert words_by_sentence(out) == [as_tuples(expected(FIRST)), as_tuples(expected(SECOND))]


def test_malformed_timestamps_and_markup_are_skipped() -> None:
    assembly, out = assembler(), []
    out += assembly.audio("c", 1, speech_pcm(FIRST))
    assembly.add_timestamps("c", 1, None, None, None)
    assembly.add_timestamps("c", 1, ["Hello", None, "my"], [0.0, 0.1, True], [VOICED_SECONDS, 0.2, 0.3])
    assembly.add_timestamps("c", 1, ['<break time="1s"/>', "<spell>there</spell>"], [0.1, 0.12], [0.12, 0.21])
    out += assembly.end_sentence("c", 1)
    assert words_by_sentence(out) == [[("Hello", 0.0, VOICED_SECONDS), ("there", 0.12, 0.21)]]
