"""Property-based bad-text fuzzing: the sentence chunker, text cleaning, send_text/say/reply.

Text with control characters, NUL, lone surrogates, RTL marks, emoji,
combining accents, nothing or only white space, or 100 kB never crashes: it is
cleaned and used, or rejected with an ``error`` event (or a ``TypeError`` for
a non-str), and the session answers the next turn.
"""

from __future__ import annotations

import itertools
import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from session_helpers import conversation

from vocalis.testing import Conversation, FakeLLM, FakeTTS, run_virtual
from vocalis.text import SentenceChunker, clean_text, has_text, speakable

# Deterministic in CI: fixed derandomised examples, no example database on disk.
FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

NASTY = [
    "\x00",
    "\x07",
    "\x1b[31m",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x7f",
    "\x85",
    "\x9b",
    "\r\n",
    "\t",
    "\ud800",
    "\udfff",
    "\u200b",
    "\u200d",
    "\u202e",
    "\u2066",
    "\ufeff",
    "\u00a0",
    "\u2028",
    "\u3000",
    "👍🏽",
    "👨‍👩‍👧",
    "e\u0301\u0301",
    "שלום",
    "مرحبا",
    "日本語",
    "\U0010ffff",
]
PUNCTUATION = [
    " ",
    " ",
    "\n",
    "\n\n",
    ".",
    "!",
    "?",
    "…",
    ";",
    ":",
    ",",
    ", ",
    '"',
    "')",
    "...",
    "?!",
    "Dr. ",
    "e.g. ",
    "3.5",
    "a.m. ",
    "U.S. ",
]
WORDS = ["hello", "world", "a", "I", "the", "weather", "x" * 30]

pieces = st.one_of(st.sampled_from(NASTY), st.sampled_from(PUNCTUATION), st.sampled_from(WORDS), st.characters())
texts = st.lists(pieces, max_size=120).map("".join)


def squeeze(text: str) -> str:
    """The text without any white space: what chunking must preserve exactly."""
    return "".join(text.split())


def stream(chunker: SentenceChunker, text: str, cuts: list[int]) -> list[str]:
    """Push ``text`` split at ``cuts`` (like LLM deltas), then flush."""
    bounds = sorted({0, len(text), *(cut for cut in cuts if cut < len(text))})
    out: list[str] = []
    for start, end in itertools.pairwise(bounds):
        out.extend(chunker.push(text[start:end]))
    return out + chunker.flush()


# -- sentence chunking ----------------------------------------------------------------


@settings(FUZZ, max_examples=600)
# Found by this test: a lone "." with min_chars=0 crashed, a cut in white space gave "".
@example(text=". ", cuts=[], min_chars=0, first_chunk_chars=0, max_chars=1)
@example(text="  ", cuts=[], min_chars=0, first_chunk_chars=0, max_chars=1)
@example(text="   " + "x" * 200, cuts=[], min_chars=8, first_chunk_chars=24, max_chars=160)
@given(
    text=texts,
    cuts=st.lists(st.integers(0, 400), max_size=40),
    min_chars=st.integers(0, 20),
    first_chunk_chars=st.integers(0, 60),
    max_chars=st.integers(1, 200),
)
def test_chunks_never_lose_duplicate_or_come_out_empty(
    text: str, cuts: list[int], min_chars: int, first_chunk_chars: int, max_chars: int
) -> None:
    chunker = SentenceChunker(min_chars=min_chars, first_chunk_chars=first_chunk_chars, max_chars=max_chars)
    chunks = stream(chunker, text, cuts)
    assert all(chunks), f"empty chunk in {chunks!r}"
    assert all(chunk == chunk.strip() for chunk in chunks)
    assert squeeze("".join(chunks)) == squeeze(text)
    assert chunker.flush() == []


@settings(FUZZ, max_examples=300)
@given(text=texts.filter(lambda t: all(len(word) <= 120 for word in t.split())), by_char=st.booleans())
def test_default_chunker_keeps_words_whole(text: str, by_char: bool) -> None:
    """With the default limits and words shorter than ``max_chars`` no word is split."""
    chunks = stream(SentenceChunker(), text, list(range(len(text))) if by_char else [])
    assert all(chunks)
    assert " ".join(chunks).split() == text.split()
    assert all(len(chunk) <= 160 for chunk in chunks if " " in chunk.strip())


def test_chunker_takes_100_kb_without_sentence_ends_in_bounded_chunks() -> None:
    text = ("word " * 20_000) + "x" * 1_000
    chunker = SentenceChunker()
    chunks = stream(chunker, text, list(range(0, len(text), 7)))
    assert squeeze("".join(chunks)) == squeeze(text)
    assert max(len(chunk) for chunk in chunks) <= 160


# -- cleaning -----------------------------------------------------------------------


@settings(FUZZ, max_examples=500)
@given(text=texts)
def test_clean_text_leaves_only_encodable_printable_text(text: str) -> None:
    cleaned = clean_text(text)
    cleaned.encode("utf-8")  # lone surrogates would raise here
    assert not any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in cleaned)
    assert clean_text(cleaned) == cleaned
    kept = [ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cs")]
    assert [ch for ch in cleaned if ch not in " \t\n\r\ufffd"] == [ch for ch in kept if ch not in " \t\n\r\ufffd"]


@pytest.mark.parametrize("text", ["👨‍👩‍👧 שלום e\u0301", "\u202eevil\u202c", "tab\there\nnew line"])
def test_clean_text_keeps_ordinary_unicode(text: str) -> None:
    assert clean_text(text) == text


# -- a running session ---------------------------------------------------------------

RESPONSE = "All good."


def _session(**kwargs: Any) -> Conversation:
    # Short agent audio so a 100 kB say() plays out quickly even in virtual time.
    return conversation(responses=[RESPONSE], tts=FakeTTS(seconds_per_char=0.0005), **kwargs)


async def _next_turn_works(conv: Conversation) -> None:
    turns = len(conv.agent_turns())
    await conv.session.send_text("are you still there?")
    assert len(conv.agent_turns()) > turns and conv.agent_turns()[-1] == RESPONSE


@settings(FUZZ, max_examples=60)
@given(calls=st.lists(st.tuples(st.sampled_from(["send_text", "say", "reply"]), texts), min_size=1, max_size=4))
def test_session_takes_any_text(calls: list[tuple[str, str]]) -> None:
    async def main() -> Conversation:
        async with _session() as conv:
            for method, text in calls:
                before = len(conv.errors())
                handle = await getattr(conv.session, method)(text)
                await conv.wait_for_speech(handle)
                usable = has_text(clean_text(text))
                if method == "send_text" and usable:
                    assert conv.user_turns()[-1] == clean_text(text).strip()
                if method in ("send_text", "say") and not usable:
                    assert handle.discarded
                    assert conv.errors()[before:][-1]["source"] == method
                    assert "empty" in conv.errors()[-1]["message"]
                if method == "reply" and not usable:
                    assert handle.discarded
            await _next_turn_works(conv)
        return conv

    conv = run_virtual(main())
    assert {e["source"] for e in conv.errors()} <= {"send_text", "say"}
    llm = conv.session.pipeline.llm
    for request in llm.requests:  # what reaches a provider always encodes as UTF-8
        for message in request.chat_ctx.to_openai():
            str(message.get("content") or "").encode("utf-8")


@pytest.mark.parametrize("method", ["send_text", "say", "reply"])
@pytest.mark.parametrize("value", [None, b"hello", 42, ["hello"], object()])
def test_non_str_text_is_a_clear_type_error(method: str, value: Any) -> None:
    async def main() -> Conversation:
        async with _session() as conv:
            with pytest.raises(TypeError, match=rf"{method}\(\) expects .* as a str, not {type(value).__name__}"):
                await getattr(conv.session, method)(value)
            await _next_turn_works(conv)
        return conv

    run_virtual(main())


@pytest.mark.parametrize("method", ["send_text", "say", "reply"])
def test_100_kb_of_text(method: str) -> None:
    text = "This is a long sentence with many words in it. " * 2_200
    assert len(text) > 100_000

    async def main() -> Conversation:
        async with _session() as conv:
            handle = await getattr(conv.session, method)(text)
            await conv.wait_for_speech(handle, timeout=600)
            await _next_turn_works(conv)
        return conv

    conv = run_virtual(main())
    assert conv.errors() == []
    if method == "send_text":
        assert conv.user_turns()[0] == text.strip()
    if method == "say":
        assert squeeze(conv.agent_turns()[0]) == squeeze(text)


@settings(FUZZ, max_examples=40)
@given(response=texts)
def test_any_llm_text_is_chunked_and_spoken_without_loss(response: str) -> None:
    """Whatever the model streams, every speakable chunk reaches the TTS once, in order."""

    async def main() -> tuple[Conversation, FakeTTS]:
        tts = FakeTTS(seconds_per_char=0.001)
        async with conversation(llm=FakeLLM([response, RESPONSE]), tts=tts) as conv:
            await conv.session.send_text("say something odd")
            await _next_turn_works(conv)
        return conv, tts

    conv, tts = run_virtual(main())
    assert conv.errors() == []
    words = response.split(" ") if response else []
    deltas = [word if index == 0 else " " + word for index, word in enumerate(words)]  # as FakeLLM streams
    expected = [chunk for chunk in stream(SentenceChunker(), "".join(deltas), _offsets(deltas)) if speakable(chunk)]
    assert tts.spoken[:-1] == expected
    assert squeeze("".join(tts.spoken[:-1])) == squeeze("".join(c for c in expected))


def _offsets(deltas: list[str]) -> list[int]:
    return list(itertools.accumulate(len(delta) for delta in deltas))
