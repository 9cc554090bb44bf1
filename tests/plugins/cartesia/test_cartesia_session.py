"""Whole agent sessions whose TTS is CartesiaTTS against the local server.

A streamed multi-sentence reply is one context per turn, fed as continuations
over one WebSocket; a barge-in cancels that context server-side, and the turn
keeps only the words whose audio was played: by the server's word timestamps,
exactly the words whose timing ended before the cut.
"""

from __future__ import annotations

from collections.abc import Callable

from cartesia_protocol import VOICED_SECONDS, WORD_SECONDS, words
from cartesia_server import CartesiaServer

from vocalis import Agent, CascadingPipeline
from vocalis.chat import ChatRole
from vocalis.testing import Conversation, FakeLLM, FakeResponse, FakeSTT, FakeVAD
from vocalis_cartesia import CartesiaTTS

WEATHER = "Sure, I can check that for you. It is sunny in Paris today. Tomorrow it will rain, so take a coat."
THANKS = "You are welcome. Have a lovely day!"
LONG = (
    "Let me tell you a long story about the sea. Once there was a small boat with a red sail. "
    "It sailed every morning past the old lighthouse. The keeper waved at it from his window. "
    "One day a storm came over the hills. The boat came home safe, and everyone cheered."
)


def pipeline(tts: CartesiaTTS, transcripts: list[str], replies: list[FakeResponse]) -> CascadingPipeline:
    return CascadingPipeline(stt=FakeSTT(transcripts), llm=FakeLLM(replies), tts=tts, vad=FakeVAD(), turn_detector=None)


async def test_each_turn_is_one_context_of_continuations(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    replies = [FakeResponse(WEATHER, token_interval=0.01), FakeResponse(THANKS, token_interval=0.01)]
    p = pipeline(make_tts(), ["what's the weather in paris", "thanks"], replies)
    async with Conversation(Agent("Be brief."), p) as conv:
        await conv.user_speaks(0.6)
        await conv.wait_for_agent_turn(1, timeout=30)
        await conv.user_speaks(0.6)
        await conv.wait_for_agent_turn(2, timeout=30)

    assert conv.user_turns() == ["what's the weather in paris", "thanks"]
    assert conv.agent_turns() == [WEATHER, THANKS]
    assert conv.errors() == []
    first, second = server.context_list()
    assert server.connections == 1, "the turns share one WebSocket"
    for context, reply in ((first, WEATHER), (second, THANKS)):
        texts = [body for body in context.inputs if body["transcript"]]
        assert len(texts) >= 2, "the reply's sentences go as continuations of one context"
        assert all(body["continue"] for body in texts)
        assert context.transcript.strip() == reply
        assert context.inputs[-1]["continue"] is False and context.done_sent and not context.cancelled
    assert not [m for _, m in server.received if "cancel" in m]
    # Every word of both replies was played.
    spoken = len(words(WEATHER)) + len(words(THANKS))
    assert conv.agent_audio_seconds() >= spoken * WORD_SECONDS - 0.05


async def test_a_barge_in_cancels_the_context_and_keeps_only_what_was_heard(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    # Audio comes at the pace it plays, so most of the story is still being made when the user cuts in.
    server.chunk_interval = 0.1
    replies = [FakeResponse(LONG, token_interval=0.005), FakeResponse(THANKS, token_interval=0.01)]
    p = pipeline(make_tts(), ["tell me a story", "stop, thanks"], replies)
    async with Conversation(Agent("Tell stories."), p) as conv:
        await conv.user_speaks(0.6)
        await conv.wait_for(lambda: conv.agent_audio_seconds() > 1.0, timeout=30)
        await conv.user_speaks(1.0)  # barge-in
        await conv.wait_for_agent_turn(2, timeout=30)
        played_before_reply = conv.agent_audio_seconds()

    story, answer = conv.named("agent_turn")
    assert story["interrupted"] is True and answer["text"] == THANKS
    heard = story["text"]
    assert heard and LONG.startswith(heard) and len(heard) < len(LONG)
    # Nothing unheard is reported: no more words than the audio played could hold.
    story_seconds = played_before_reply - len(words(THANKS)) * WORD_SECONDS
    assert len(words(heard)) <= story_seconds / WORD_SECONDS + 1
    items = [i for i in conv.session.agent.chat_context.items if getattr(i, "role", None) is ChatRole.ASSISTANT]
    assert items[0].content == heard and items[0].interrupted

    first, second = server.context_list()
    assert first.cancelled, "the interrupted turn's context is cancelled server-side"
    assert first.chunks * 0.1 < len(words(LONG)) * WORD_SECONDS, "the server stopped generating the story"
    cancels = [m for _, m in server.received if "cancel" in m]
    assert cancels == [{"context_id": first.context_id, "cancel": True}]
    assert second.transcript.strip() == THANKS and not second.cancelled
    assert server.connections == 1
    assert conv.errors() == []


async def test_a_barge_in_keeps_exactly_the_words_whose_timestamps_ended(
    server: CartesiaServer, make_tts: Callable[..., CartesiaTTS]
) -> None:
    server.chunk_interval = 0.05  # audio comes faster than it plays: the cut finds it buffered
    replies = [FakeResponse(LONG, token_interval=0.005), FakeResponse(THANKS, token_interval=0.01)]
    p = pipeline(make_tts(), ["tell me a story", "stop, thanks"], replies)
    cuts: list[tuple[float, list[str]]] = []
    async with Conversation(Agent("Tell stories."), p) as conv:
        output = conv.transport.audio_output
        clear = output.clear_buffer

        def cut_in_a_pause() -> float:
            # The output reports the cut in the pause after a word: the word's
            # timestamp has ended, its share of the audio has not, so only the
            # timestamps (not a share in proportion) keep that word.
            played = clear()
            if cuts:  # the session closing
                return played
            said = [body["transcript"].strip() for body in server.context_list()[0].inputs if body["transcript"]]
            start = 0.0
            for sentence in said:
                length = len(words(sentence)) * WORD_SECONDS
                if played < start + length:
                    heard = start + int((played - start) / WORD_SECONDS) * WORD_SECONDS + VOICED_SECONDS + 0.015
                    cuts.append((heard, said))
                    return heard
                start += length
            cuts.append((played, said))
            return played

        output.clear_buffer = cut_in_a_pause  # type: ignore[method-assign]
        await conv.user_speaks(0.6)
        await conv.wait_for(lambda: conv.agent_audio_seconds() > 1.5, timeout=30)
        await conv.user_speaks(1.0)  # barge-in
        await conv.wait_for_agent_turn(2, timeout=30)

    ((heard, said),) = cuts
    kept, start = [], 0.0
    for sentence in said:
        timings = [
            (start + i * WORD_SECONDS, start + i * WORD_SECONDS + VOICED_SECONDS) for i in range(len(words(sentence)))
        ]
        assert len(sentence.split()) == len(timings)
        ended = [end for _, end in timings if end <= heard + 1e-9]
        if not ended:
            break
        kept.append(" ".join(sentence.split()[: len(ended)]))
        start += len(timings) * WORD_SECONDS
    expected = " ".join(kept)

    story, answer = conv.named("agent_turn")
    assert story["interrupted"] is True and answer["text"] == THANKS
    assert expected and len(expected) < len(LONG)
    assert story["text"] == expected
    items = [i for i in conv.session.agent.chat_context.items if getattr(i, "role", None) is ChatRole.ASSISTANT]
    assert items[0].content == expected and items[0].interrupted
    assert server.context_list()[0].cancelled
    assert conv.errors() == []
