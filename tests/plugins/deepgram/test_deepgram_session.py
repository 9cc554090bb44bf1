"""Whole agent sessions whose STT is DeepgramSTT, streaming real speech through the listen server.

The audio is the corpus' recorded sentences pushed at a microphone's pace,
with pauses; the server answers with interim results, endpointing finals,
Finalize answers (the pipeline's VAD flushes) and utterance ends, after a
configured delay. Every final must reach the conversation once, in order,
even when the connection drops in the middle of a sentence.
"""

from __future__ import annotations

from collections.abc import Callable

from deepgram_helpers import say, utterance
from deepgram_listen_server import ListenServer

from vocalis import Agent, CascadingPipeline
from vocalis.testing import Conversation, FakeLLM, FakeTTS, FakeVAD
from vocalis_deepgram import DeepgramSTT


def heard_finals(conv: Conversation) -> list[str]:
    return [e["text"] for e in conv.named("on_speech_in") if e["is_final"]]


async def test_every_final_reaches_the_conversation_once_and_in_order(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT]
) -> None:
    clips = [utterance(0), utterance(1), utterance(6)]
    texts = [text for _, text in clips]
    listen.reset(transcripts=list(texts), final_delay=0.1)
    pipeline = CascadingPipeline(
        stt=make_stt(), llm=FakeLLM(["Sure.", "Okay."]), tts=FakeTTS(), vad=FakeVAD(), turn_detector=None
    )
    async with Conversation(Agent("Be brief."), pipeline) as conv:
        await say(conv, clips[0][0])
        await conv.silence(0.4)  # a pause inside the turn: endpointing finalises the first sentence
        await say(conv, clips[1][0])
        await conv.wait_for_agent_turn(timeout=20)
        await say(conv, clips[2][0])
        await conv.wait_for_agent_turn(timeout=20)

    assert conv.errors() == []
    assert heard_finals(conv) == texts, "each final once, in order"
    assert " ".join(conv.user_turns()) == " ".join(texts)
    assert conv.user_turns()[-1] == texts[2]
    assert any(not e["is_final"] for e in conv.named("on_speech_in")), "interims were shown"
    (conn,) = listen.connections
    assert "Finalize" in conn.controls, "the VAD's end of speech finalised the segment"


async def test_a_connection_dropped_mid_sentence_loses_and_repeats_nothing(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT]
) -> None:
    clips = [utterance(2), utterance(3)]
    texts = [text for _, text in clips]
    # The connection drops 1.2 s into the second sentence (the first one is final by then).
    listen.reset(transcripts=list(texts), final_delay=0.1, drop_after=3.0 + 0.5 + 1.2, drop_code=1011)
    pipeline = CascadingPipeline(
        stt=make_stt(), llm=FakeLLM(["Noted."]), tts=FakeTTS(), vad=FakeVAD(), turn_detector=None
    )
    async with Conversation(Agent("Be brief."), pipeline) as conv:
        await conv.silence(0.5)
        await say(conv, clips[0][0])
        await conv.silence(0.5)
        await say(conv, clips[1][0])
        await conv.wait_for(lambda: len(heard_finals(conv)) >= 2, timeout=20)
        await conv.wait_for_agent_turn(timeout=20)

    assert len(listen.connections) == 2 and listen.connections[0].close_code == 1011
    assert conv.errors() == [], "a recoverable drop is the provider's business"
    assert heard_finals(conv) == texts
    assert " ".join(conv.user_turns()) == " ".join(texts)
