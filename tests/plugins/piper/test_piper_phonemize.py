"""The espeak-ng phonemizer: IPA output, Piper-style punctuation, sentences."""

from __future__ import annotations

import threading

import pytest

from vocalis_piper.phonemize import EspeakError, phonemize


def test_hello_world_is_ipa() -> None:
    assert phonemize("hello world") == ["həlˈoʊ wˈɜːld"]


def test_clause_punctuation_is_kept_and_sentences_split() -> None:
    sentences = phonemize("Hello, how are you? I'm fine! Thanks: really; yes.")
    assert len(sentences) == 3
    assert sentences[0].endswith("?") and ", " in sentences[0]
    assert sentences[1].endswith("!")
    assert ": " in sentences[2] and "; " in sentences[2] and sentences[2].endswith(".")


def test_text_without_final_punctuation_ends_bare() -> None:
    (sentence,) = phonemize("I would like to book a table for")
    assert sentence[-1].isalpha() or sentence[-1] in "ːˈˌ"


def test_titles_and_decimals_do_not_end_sentences() -> None:
    sentences = phonemize("Dr. Smith paid 3.5 dollars. Then he left.")
    assert len(sentences) == 2
    assert "pɔɪnt" in sentences[0]


@pytest.mark.parametrize("text", ["", "   ", "...", "?!", "\x00\x07"])
def test_nothing_to_say(text: str) -> None:
    assert phonemize(text) == []


def test_nul_does_not_truncate() -> None:
    assert len(phonemize("one\x00two")[0]) > len(phonemize("one")[0])


def test_unknown_voice_is_an_error() -> None:
    with pytest.raises(EspeakError, match="no voice"):
        phonemize("hello", voice="xx-nonexistent")
    assert phonemize("hello world") == ["həlˈoʊ wˈɜːld"]  # still usable afterwards


def test_concurrent_calls_are_serialised() -> None:
    texts = ["Good morning.", "What time is it?", "Book a table for two."] * 10
    expected = {text: phonemize(text) for text in set(texts)}
    results: list[tuple[str, list[str]]] = []

    def work(text: str) -> None:
        results.append((text, phonemize(text)))

    threads = [threading.Thread(target=work, args=(t,)) for t in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == len(texts)
    assert all(expected[text] == out for text, out in results)
