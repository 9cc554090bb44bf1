"""A reply that starts repeating itself ends at the first repeat, unspoken."""

from __future__ import annotations

import re

import pytest
from session_helpers import pipeline

from vocalis import Agent
from vocalis.pipeline.generation.loop_guard import LoopGuard
from vocalis.testing import Conversation, FakeLLM, FakeResponse, FakeSTT, run_virtual

LOOP = "I'm here to help with whatever you're feeling. " * 20


def guarded(chunks: list[str]) -> tuple[str, bool]:
    guard = LoopGuard()
    out = []
    for chunk in chunks:
        out.append(guard.feed(chunk))
        if guard.stopped:
            return "".join(out), True
    out.append(guard.flush())
    return "".join(out), False


def words(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text)


@pytest.mark.parametrize("split", [words, lambda t: re.findall(r".{1,3}", t, re.S), list])
def test_a_looping_sentence_is_said_once_however_the_text_is_chunked(split) -> None:
    text, stopped = guarded(split(LOOP))
    assert stopped and text == "I'm here to help with whatever you're feeling. "


def test_a_loop_after_other_sentences_keeps_them() -> None:
    reply = "Hello there. " + "You can ask me anything at all. " * 5
    assert guarded(words(reply)) == ("Hello there. You can ask me anything at all. ", True)


@pytest.mark.parametrize(
    "reply",
    [
        "Sure. Yes. Yes. The time in Tokyo is ten. Anything else?",  # short sentences may repeat
        "I can help with that. I can help with that too. Bye.",  # a prefix that goes its own way
        "It costs 3.5 dollars. That is 3.5 more than before.",
        "One, two, three, four, five, six. Seven, eight.",
    ],
)
def test_ordinary_replies_pass_unchanged(reply: str) -> None:
    assert guarded(words(reply)) == (reply, False)


def test_a_loop_without_sentence_ends_is_stopped_too() -> None:
    text, stopped = guarded(words("and so on " * 30))
    assert stopped and len(text.split()) < 20


def test_text_that_resembles_nothing_said_passes_at_once() -> None:
    guard = LoopGuard()
    assert guard.feed("Hel") == "Hel" and guard.feed("lo there. ") == "lo there. "
    assert guard.feed("Hel") == ""  # could be "Hello there." again: held
    assert guard.feed("p is on the way. ") == "Help is on the way. "


def test_the_session_speaks_and_records_the_loop_once() -> None:
    async def main() -> Conversation:
        llm = FakeLLM([FakeResponse(LOOP, token_interval=0.02)])
        async with Conversation(Agent("x"), pipeline(stt=FakeSTT([]), llm=llm)) as conv:
            await conv.session.reply("say something")
        return conv

    conv = run_virtual(main())
    (turn,) = conv.named("agent_turn")
    assert turn["text"].strip() == "I'm here to help with whatever you're feeling."
    assert [m.content for m in conv.session.agent.chat_context.messages()][-1].strip() == turn["text"].strip()
    assert not conv.named("error")
