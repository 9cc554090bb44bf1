"""An interrupted sentence keeps the words that played: by the TTS's word timings when given."""

from __future__ import annotations

from vocalis.audio import AudioFrame
from vocalis.chat import ChatContext
from vocalis.pipeline.generation.utterance import Utterance
from vocalis.providers.tts import SynthesizedAudio, WordTiming

SENTENCE = "Hello there, my friend from far away."
# A slow first word and a long pause before "friend": proportion and timings disagree.
TIMINGS = (
    WordTiming("Hello", 0.0, 0.9),
    WordTiming("there,", 0.9, 1.2),
    WordTiming("my", 1.2, 1.3),
    WordTiming("friend", 2.2, 2.6),
    WordTiming("from", 2.6, 2.8),
    WordTiming("far", 2.8, 3.0),
    WordTiming("away.", 3.0, 3.4),
)


def _utterance(timings: tuple[WordTiming, ...]) -> Utterance:
    utterance = Utterance(ChatContext())
    utterance.add_text(SENTENCE, 0.0)
    utterance.start_segment(SENTENCE)
    utterance.add_timings(timings[:4])  # timings may come in pieces, with later audio
    utterance.add_timings(timings[4:])
    utterance.pushed = 3.5
    utterance.last_complete = True
    return utterance


def test_timings_keep_exactly_the_words_that_played() -> None:
    utterance = _utterance(TIMINGS)
    utterance.heard = 1.35  # "my" has ended, "friend" has not begun
    assert utterance.finish(interrupted=True) == "Hello there, my"
    assert utterance.messages[0].content == "Hello there, my" and utterance.messages[0].interrupted


def test_a_word_cut_in_its_middle_was_not_heard() -> None:
    utterance = _utterance(TIMINGS)
    utterance.heard = 0.5
    assert utterance.heard_text() == ""


def test_without_timings_the_cut_is_in_proportion() -> None:
    utterance = _utterance(())
    utterance.heard = 1.35  # 1.35 / 3.5 of 7 words: 2
    assert utterance.heard_text() == "Hello there,"


def test_timings_for_more_words_than_the_text_keep_at_most_the_text() -> None:
    utterance = _utterance(TIMINGS + (WordTiming("extra", 3.4, 3.45),))
    utterance.heard = 3.46
    utterance.pushed = 3.6  # the segment's audio runs on past the last word
    assert utterance.heard_text() == SENTENCE


def test_synthesized_audio_carries_timings_and_defaults_to_none() -> None:
    frame = AudioFrame.silence(0.02, 24_000)
    assert SynthesizedAudio(frame).words == ()
    assert SynthesizedAudio(frame, "Hi.", words=(WordTiming("Hi.", 0.0, 0.2),)).words[0].end == 0.2
