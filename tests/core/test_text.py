"""Tests for ``vocalis.text``: sentence chunking of streamed LLM text."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from vocalis.text import SentenceChunker, speakable

PARAGRAPH = (
    "Dr. Smith arrived at noon. He said hello, e.g. this works fine. "
    "Growth was 3.5 percent this year! Did you expect that? "
    "I certainly did not. Thanks for asking."
)
PARAGRAPH_SENTENCES = [
    "Dr. Smith arrived at noon.",
    "He said hello, e.g. this works fine.",
    "Growth was 3.5 percent this year!",
    "Did you expect that?",
    "I certainly did not.",
    "Thanks for asking.",
]


def words(text: str) -> list[str]:
    """LLM-style deltas: each word with its leading white space."""
    return re.findall(r"\s*\S+|\s+$", text)


def chars(text: str) -> list[str]:
    """The worst case: one character per delta."""
    return list(text)


def run(chunker: SentenceChunker, deltas: list[str]) -> tuple[list[str], list[str]]:
    """Push every delta; return (sentences released while streaming, what flush released)."""
    streamed: list[str] = []
    for delta in deltas:
        streamed.extend(chunker.push(delta))
    return streamed, chunker.flush()


def normalized(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("split", [words, chars], ids=["words", "chars"])
def test_streamed_paragraph_yields_sentences_in_order(split: Callable[[str], list[str]]) -> None:
    """Token-by-token input gives whole sentences in order; abbreviations and decimals don't cut."""
    streamed, rest = run(SentenceChunker(), split(PARAGRAPH))
    assert streamed + rest == PARAGRAPH_SENTENCES
    # the last sentence has no trailing white space, so only flush can release it
    assert rest == ["Thanks for asking."]


@pytest.mark.parametrize(
    "text",
    [
        PARAGRAPH,
        "  Leading space. Then a list:\n- one item here\n- two items here\n\nDone now.  ",
        "This opening clause is deliberately long enough to pass sixty characters, so it is cut early. Fine.",
        "No punctuation at all in this reply",
        'Wait… what happened here?! He said "Stop!" (Then he left.) OK.',
    ],
)
@pytest.mark.parametrize("split", [words, chars], ids=["words", "chars"])
def test_nothing_is_lost_or_duplicated(text: str, split: Callable[[str], list[str]]) -> None:
    """Joining every released chunk and the flush gives back the input (white space normalised)."""
    streamed, rest = run(SentenceChunker(), split(text))
    chunks = streamed + rest
    assert all(chunk == chunk.strip() and chunk for chunk in chunks)
    assert normalized(" ".join(chunks)) == normalized(text)


def test_sentence_needs_following_white_space() -> None:
    """A full stop at the end of the buffer is not a boundary yet (it may be "3." of "3.5")."""
    chunker = SentenceChunker()
    assert chunker.push("The rate rose to 3.") == []
    assert chunker.push("5 percent overall. ") == ["The rate rose to 3.5 percent overall."]


@pytest.mark.parametrize(
    "text",
    [
        "Please ask Dr. Smith about it. ",
        "Bring fruit, e.g. apples and pears. ",
        "We met Mrs. Jones at 5 p.m. yesterday. ",
        "Page no. 5 has the answer here. ",
        "Written by J. Doe himself today. ",
        "Things like forks, knives, etc. are below. ",
    ],
)
def test_abbreviations_do_not_end_sentences(text: str) -> None:
    """Known abbreviations and initials followed by a space are not sentence ends."""
    assert SentenceChunker().push(text) == [text.strip()]


def test_question_and_exclamation_marks_end_sentences() -> None:
    """?, ! and combinations like ?! end a sentence, with closing quotes kept on it."""
    chunker = SentenceChunker(min_chars=1)
    out = chunker.push('Is it really true?! Yes it is! She said "Go now!" Then ')
    assert out == ["Is it really true?!", "Yes it is!", 'She said "Go now!"']
    assert chunker.flush() == ["Then"]


def test_short_sentences_are_joined_with_the_next() -> None:
    """A sentence below min_chars waits and is sent together with the following one."""
    chunker = SentenceChunker(min_chars=8)
    assert chunker.push("Hi. ") == []
    assert chunker.push("How are you today? ") == ["Hi. How are you today?"]


def test_semicolon_and_colon_are_boundaries() -> None:
    """Clause punctuation (; and :) lets long lists start speaking early."""
    chunker = SentenceChunker()
    assert chunker.push("Here is the plan: first we eat; then we sleep. ") == [
        "Here is the plan:",
        "first we eat;",
        "then we sleep.",
    ]


def test_paragraph_break_is_a_boundary() -> None:
    """A blank line ends a chunk even without punctuation."""
    chunker = SentenceChunker()
    assert chunker.push("Heading without stop\n\nBody text") == ["Heading without stop"]
    assert chunker.flush() == ["Body text"]


def test_single_newline_is_a_boundary() -> None:
    """Each line of a list is its own chunk, released as soon as its newline arrives."""
    chunker = SentenceChunker()
    assert chunker.push("- buy some milk\n") == ["- buy some milk"]
    assert chunker.push("- walk the dog\n- call mum") == ["- walk the dog"]
    assert chunker.flush() == ["- call mum"]


def test_first_chunk_is_cut_at_a_late_comma() -> None:
    """Before any sentence was released, a comma past first_chunk_chars releases the clause."""
    chunker = SentenceChunker(first_chunk_chars=20)
    assert chunker.push("Short, then a clause that runs on") == []  # comma before 20 chars
    assert chunker.push(" and on, and more") == ["Short, then a clause that runs on and on,"]
    # only the first chunk is cut at commas
    assert chunker.push(" text, with, many, commas, here, and, there") == []
    assert chunker.flush() == ["and more text, with, many, commas, here, and, there"]


def test_comma_cut_can_be_disabled_and_is_rearmed_by_reset() -> None:
    """first_chunk_chars=0 disables the comma cut; reset() forgets text and re-arms it."""
    long_clause = "x" * 70 + ", rest"
    assert SentenceChunker(first_chunk_chars=0).push(long_clause) == []
    chunker = SentenceChunker()
    assert chunker.push("A whole sentence here. ") == ["A whole sentence here."]
    assert chunker.push(long_clause) == []  # not the first chunk any more
    chunker.reset()
    assert chunker.flush() == []
    assert chunker.push(long_clause) == ["x" * 70 + ","]


def test_flush_empties_the_buffer() -> None:
    """flush releases trailing text once; white space alone releases nothing."""
    chunker = SentenceChunker()
    chunker.push("trailing words ")
    assert chunker.flush() == ["trailing words"]
    assert chunker.flush() == []
    chunker.push("   \n ")
    assert chunker.flush() == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello", True),
        ("42", True),
        ("é", True),
        ("...", False),
        ("  !? ", False),
        ("", False),
        ("—", False),
    ],
)
def test_speakable(text: str, expected: bool) -> None:
    """Only text with letters or digits is worth sending to a TTS."""
    assert speakable(text) is expected


def test_run_on_text_is_cut_at_a_space_when_it_grows_too_long() -> None:
    """An LLM that never ends a sentence must not keep the TTS waiting."""
    chunker = SentenceChunker(max_chars=40)
    words = ("and then the model kept talking without any punctuation at all " * 4).split()
    out: list[str] = []
    for word in words:
        out += chunker.push(word + " ")
    out += chunker.flush()
    assert len(out) >= 5
    assert all(len(chunk) <= 40 for chunk in out)
    assert " ".join(out).split() == words


def test_a_long_first_sentence_without_a_comma_is_cut_before_a_clause() -> None:
    """So the first audio need not wait for the whole sentence; never mid-clause."""
    text = "I'm here to assist you with any project or task that requires creative thinking. Then more."
    chunker = SentenceChunker()
    out: list[str] = []
    for word in re.findall(r"\S+\s*", text):
        out += chunker.push(word)
    out += chunker.flush()
    assert "".join(f"{piece} " for piece in out).strip() == text
    first = out[0].split()
    assert 8 <= len(first) < 14 and text.split()[len(first)] in {"or", "that", "with", "and"}
    # Short sentences, and sentences with a comma, are cut as before.
    assert SentenceChunker().push("The capital of France is Paris. ") == ["The capital of France is Paris."]
