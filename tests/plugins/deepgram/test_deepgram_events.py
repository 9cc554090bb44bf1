"""Deepgram's live messages, shaped as the service sends them, into speech events;
and the journal of audio kept for a resend."""

from __future__ import annotations

from typing import Any

from vocalis.providers.stt import SpeechEvent
from vocalis_deepgram.listen_events import PendingFlush, TranscriptAssembler
from vocalis_deepgram.replay import AudioJournal


def results(
    text: str, start: float, duration: float, *, final: bool, speech_final: bool = False, **extra: Any
) -> dict[str, Any]:
    words = [{"word": w.lower(), "start": start, "end": start + duration, "confidence": 0.9, "punctuated_word": w}
             for w in text.split()]  # fmt: skip
    message = {
        "type": "Results",
        "channel_index": [0, 1],
        "duration": duration,
        "start": start,
        "is_final": final,
        "speech_final": speech_final,
        "channel": {"alternatives": [{"transcript": text, "confidence": 0.9, "words": words}]},
        "metadata": {"request_id": "r", "model_info": {"name": "general-nova-3"}, "model_uuid": "u"},
    }
    message.update(extra)
    return message


def assembler(**options: Any) -> tuple[TranscriptAssembler, list[SpeechEvent]]:
    events: list[SpeechEvent] = []
    return TranscriptAssembler(events.append, "en", **options), events


def seen(events: list[SpeechEvent]) -> list[tuple[str, str]]:
    return [(e.type.value, e.text) for e in events]


def test_pieces_of_one_utterance_become_one_final() -> None:
    a, events = assembler()
    a.handle({"type": "SpeechStarted", "channel": [0, 1], "timestamp": 0.4})
    a.handle(results("I would like", 0.0, 1.0, final=False))
    assert a.handle(results("I would like to book", 0.0, 3.0, final=True)) == 3.0
    a.handle(results("a table", 3.0, 0.8, final=False))
    a.handle(results("a table for two.", 3.0, 1.2, final=True, speech_final=True))
    a.handle({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 4.1})
    assert seen(events) == [
        ("start_of_speech", ""),
        ("interim_transcript", "I would like"),
        ("interim_transcript", "I would like to book"),
        ("interim_transcript", "I would like to book a table"),
        ("final_transcript", "I would like to book a table for two."),
        ("end_of_speech", ""),
    ]
    final = events[4]
    assert (final.start_time, final.end_time, final.language) == (0.0, 4.2, "en")
    assert events[0].start_time == 0.4


def test_utterance_end_finalises_what_endpointing_missed() -> None:
    a, events = assembler()
    a.handle(results("Hello there", 0.0, 1.5, final=True))
    a.handle({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 1.2})
    assert seen(events)[-2:] == [("final_transcript", "Hello there"), ("end_of_speech", "")]
    assert seen(events)[0] == ("start_of_speech", "")  # from the words, without vad_events


def test_a_finalize_answer_is_a_final_even_when_empty() -> None:
    a, events = assembler()
    a.flushes.append(PendingFlush(at=2.0, deadline=99.0))
    a.handle(results("", 1.0, 1.0, final=True, from_finalize=True))
    assert seen(events) == [("final_transcript", "")] and not a.flushes
    a.handle(results("", 2.0, 1.0, final=True))  # plain silence: nothing
    assert len(events) == 1


def test_an_overdue_finalize_is_answered_with_what_is_final() -> None:
    a, events = assembler()
    a.handle(results("Book it", 0.0, 1.0, final=True))
    a.flushes.append(PendingFlush(at=1.0, deadline=10.0))
    a.answer_overdue(9.0)
    assert [t for t, _ in seen(events)].count("final_transcript") == 0
    a.answer_overdue(10.0)
    assert seen(events)[-1] == ("final_transcript", "Book it") and not a.flushes


def test_noise_without_words_ends_the_speech() -> None:
    a, events = assembler()
    a.handle({"type": "SpeechStarted", "channel": [0, 1], "timestamp": 1.0})
    a.handle(results("", 0.0, 1.5, final=True))  # too soon to tell
    a.handle(results("", 1.5, 1.0, final=True))
    assert seen(events) == [("start_of_speech", ""), ("end_of_speech", "")]


def test_without_utterance_marks_each_piece_is_final() -> None:
    a, events = assembler(hold_finals=False)
    a.handle(results("One.", 0.0, 1.0, final=True))
    a.handle(results("Two.", 1.0, 1.0, final=True))
    assert [text for kind, text in seen(events) if kind == "final_transcript"] == ["One.", "Two."]


def test_offsets_place_a_new_connection_on_the_streams_clock() -> None:
    a, events = assembler()
    a.offset = 12.5
    a.handle(results("Again.", 0.5, 1.0, final=True, speech_final=True))
    final = next(e for e in events if e.type.value == "final_transcript")
    assert (final.start_time, final.end_time) == (13.0, 14.0)


def test_the_interim_words_of_a_dropped_connection_are_not_kept() -> None:
    a, events = assembler()
    a.handle(results("Half a", 0.0, 1.0, final=False))
    a.connection_lost()
    a.handle(results("Half a sentence.", 0.0, 2.0, final=True, speech_final=True))
    a.finish()
    assert [t for k, t in seen(events) if k == "final_transcript"] == ["Half a sentence."]


def test_at_the_end_unfinalised_words_are_the_last_final() -> None:
    a, events = assembler()
    a.handle(results("Cut off", 0.0, 1.0, final=False))
    a.finish()
    assert seen(events)[-2:] == [("final_transcript", "Cut off"), ("end_of_speech", "")]


def test_odd_or_missing_fields_are_survived() -> None:
    a, events = assembler()
    assert a.handle({"type": "Results"}) is None
    a.handle({"type": "Results", "is_final": True, "channel": {"alternatives": []}, "start": "x"})
    a.handle({"type": "Unknown"})
    a.handle(results("Hola.", 0.0, 1.0, final=True, speech_final=True) | {"channel": {"alternatives": [
        {"transcript": "Hola.", "confidence": 2, "languages": ["es"]}]}})  # fmt: skip
    final = events[-1] if events[-1].type.value == "final_transcript" else events[-2]
    assert (final.text, final.language, final.confidence) == ("Hola.", "es", 1.0)


def test_the_journal_keeps_only_what_no_final_covers() -> None:
    journal = AudioJournal(16_000, 1, max_seconds=10.0)
    for _ in range(10):
        journal.add(bytes(640))  # 20 ms
    assert (journal.start, journal.end) == (0.0, 0.2)
    journal.ack(0.05)  # mid-chunk: split at the sample
    assert journal.start == 0.05 and abs(journal.seconds - 0.15) < 1e-9
    assert journal.chunks()[0] == (0.05, bytes(320))  # 1600 bytes dropped: 640 + 640 + 320
    journal.ack(0.01)  # already covered: nothing changes
    assert journal.start == 0.05
    journal.ack(5.0)
    assert journal.chunks() == [] and journal.start == journal.end == 0.2


def test_the_journal_is_bounded() -> None:
    journal = AudioJournal(16_000, 1, max_seconds=0.1)
    for _ in range(10):
        journal.add(bytes(640))
    assert abs(journal.seconds - 0.1) < 1e-9 and abs(journal.start - 0.1) < 1e-9
