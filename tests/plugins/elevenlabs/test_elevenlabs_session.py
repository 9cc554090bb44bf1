"""A whole agent session speaking through ElevenLabsTTS and the local protocol server.

The LLM streams its reply word by word; the words reach the socket as they
are written, each sentence is flushed, and the audio played is exactly the
audio the server made. When the reply is interrupted, the socket is closed
(the server stops generating) and the transcript keeps only what was played:
by the word timings the frames carry (from the server's alignment), exactly
the words whose audio ended before the cut.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from elevenlabs_server import MS_PER_CHAR, ElevenLabsServer

from vocalis import Agent, CascadingPipeline
from vocalis.chat import ChatRole
from vocalis.testing import Conversation, FakeLLM, FakeSTT, FakeVAD
from vocalis.testing.fakes import FakeResponse
from vocalis_elevenlabs import ElevenLabsTTS

Make = Callable[..., ElevenLabsTTS]
REPLY = "Sure, here is the plan for today. First we pack the bags. Then we drive down to the coast."
SENTENCES = ["Sure, here is the plan for today.", "First we pack the bags.", "Then we drive down to the coast."]
LONG = REPLY + " After that we find a place to stay for the night. In the morning we swim before breakfast."
CHAR = MS_PER_CHAR / 1000
TRAILING = 0.06  # seconds of silence after each generation's last character


def pipeline(
    tts: ElevenLabsTTS, reply: FakeResponse | list[FakeResponse], transcripts: list[str] | None = None
) -> CascadingPipeline:
    replies = reply if isinstance(reply, list) else [reply]
    return CascadingPipeline(
        stt=FakeSTT(transcripts or []), llm=FakeLLM(list(replies)), tts=tts, vad=FakeVAD(), turn_detector=None
    )


async def test_a_streamed_reply_is_played_whole(make_tts: Make, server: ElevenLabsServer) -> None:
    tts = make_tts()
    reply = FakeResponse(text=REPLY, token_interval=0.01)
    async with Conversation(Agent("Be brief."), pipeline(tts, reply, ["plan my day"])) as conv:
        await conv.user_speaks(0.6)
        await conv.wait_for_agent_turn()
    await tts.aclose()
    assert conv.user_turns() == ["plan my day"]
    assert conv.agent_turns() == [REPLY] and conv.errors() == []
    (socket,) = server.sockets
    assert socket.final_sent and not socket.closed_by_client
    # Words went out as the LLM wrote them, a flush at each sentence end.
    texts = [m["text"] for m in socket.messages[1:-1]]
    assert len(texts) > len(SENTENCES) and "".join(texts).split() == REPLY.split()
    assert sum(1 for m in socket.messages if m.get("flush")) == len(SENTENCES)
    assert [g.strip() for g in socket.generations] == SENTENCES
    # What the transport played is exactly what the server made.
    played = b"".join(p.frame.data for p in conv.transport.audio_output.frames)
    assert played == bytes(socket.audio)
    assert [e.payload["text"] for e in conv.events if e.name == "on_speech_out"] == SENTENCES


async def test_an_interruption_closes_the_socket_and_keeps_only_what_was_played(
    make_tts: Make, server: ElevenLabsServer
) -> None:
    server.behaviour.chunk_interval = 0.05  # the server speaks about as fast as it plays
    tts = make_tts()
    # The LLM is still writing when the user interrupts: the socket is open, text pending.
    reply = FakeResponse(text=REPLY + " After that we find a place to stay for the night.", token_interval=0.12)
    async with Conversation(Agent("Be brief."), pipeline(tts, reply)) as conv:
        handle = await conv.session.reply("Plan my day.", wait_for_playback=False)
        await conv.wait_for(lambda: conv.agent_audio_seconds() > 0.9, timeout=30)
        assert conv.session.interrupt()
        await asyncio.wait_for(handle, 10)
        played = conv.agent_audio_seconds()
    await tts.aclose()
    (socket,) = server.sockets
    assert await asyncio.to_thread(socket.done.wait, 10)
    assert socket.closed_by_client and not socket.final_sent and not socket.ended
    assert len(socket.audio) / 2 / tts.sample_rate > played - 1e-6  # more was made than played
    (turn,) = conv.agent_turns()
    assert handle.interrupted and turn == handle.text
    # Only words played: a prefix of the reply, every sentence in it announced
    # (it started playing), none after the audio that played.
    assert turn and REPLY.split()[: len(turn.split())] == turn.split()
    announced = [e.payload["text"] for e in conv.events if e.name == "on_speech_out"]
    assert all(sentence in announced for sentence in SENTENCES if sentence in turn)
    heard_chars = sum(len(s) for s in SENTENCES if s in turn)
    assert heard_chars * 0.02 <= played + 0.1  # the server speaks 20 ms per character
    (message,) = conv.session.agent.chat_context.messages(ChatRole.ASSISTANT)
    assert message.content == turn and message.interrupted


def spoken_words(generations: list[str]) -> tuple[list[tuple[str, float]], list[float]]:
    """Every word the server spoke with its end, on the reply's audio timeline, and
    where each sentence's frames start.

    The server speaks each generation as a leading space then its text (white
    space collapsed), ``MS_PER_CHAR`` per character, then ``TRAILING`` of
    silence. The first sentence's frames start at 0, each next one's where
    the sentence before it ended (the pause between them leads into it).
    """
    words: list[tuple[str, float]] = []
    starts, offset = [0.0], 0.0
    for text in generations:
        at = offset + CHAR  # after the leading space
        for word in text.split():
            at += len(word) * CHAR
            words.append((word, at))
            at += CHAR
        starts.append(at - CHAR)
        offset = at - CHAR + TRAILING
    return words, starts


def cut_in_a_pause(generations: list[str], played: float) -> tuple[float, str]:
    """The latest cut at most ``played`` that falls in the pause after a word and
    that only timings get right: a share of its sentence's audio in proportion
    to its words would keep a different number of them. Returns it and the words heard."""
    words, starts = spoken_words(generations)
    best: tuple[float, str] | None = None
    for position, (_, end) in enumerate(words):
        cut = end + CHAR / 2  # within the pause after the word
        number = max(i for i, start in enumerate(starts[:-1]) if start < cut)  # the sentence playing
        if cut > played or number + 1 >= len(generations):
            continue  # not played yet, or its sentence's end is not known yet
        start, stop = starts[number], starts[number + 1]
        timed = sum(1 for word_end in [e for _, e in words] if start < word_end <= cut)
        proportional = int(len(generations[number].split()) * (cut - start) / (stop - start))
        if proportional != timed:
            best = (cut, " ".join(word for word, _ in words[: position + 1]))
    assert best is not None, f"no pause to cut in before {played:.3f} s"
    return best


async def test_a_barge_in_keeps_exactly_the_words_whose_alignment_ended(
    make_tts: Make, server: ElevenLabsServer
) -> None:
    server.behaviour.chunk_interval = 0.05  # audio comes faster than it plays: the cut finds it buffered
    server.behaviour.trailing_ms = round(TRAILING * 1000)
    replies = [FakeResponse(text=LONG, token_interval=0.005), FakeResponse(text="Sure, I stop.", token_interval=0.01)]
    tts = make_tts()
    cuts: list[tuple[float, str]] = []
    async with Conversation(Agent("Be brief."), pipeline(tts, replies, ["plan my day", "stop"])) as conv:
        output = conv.transport.audio_output
        clear = output.clear_buffer

        def report_a_cut_in_a_pause() -> float:
            # The output reports the cut in the pause after a word (no later
            # than what played): that word's alignment has ended, but its
            # sentence's share of the audio would not keep it.
            played = clear()
            if cuts:  # the session closing
                return played
            cuts.append(cut_in_a_pause(list(server.sockets[0].generations), played))
            return cuts[0][0]

        output.clear_buffer = report_a_cut_in_a_pause  # type: ignore[method-assign]
        await conv.user_speaks(0.6)
        await conv.wait_for(lambda: conv.agent_audio_seconds() > 1.0, timeout=30)
        await conv.user_speaks(1.0)  # barge-in
        await conv.wait_for_agent_turn(2, timeout=30)
    await tts.aclose()

    ((_, expected),) = cuts
    story, answer = conv.named("agent_turn")
    assert story["interrupted"] is True and answer["text"] == "Sure, I stop."
    assert expected and LONG.startswith(expected) and len(expected) < len(LONG)
    assert story["text"] == expected
    first, *_ = conv.session.agent.chat_context.messages(ChatRole.ASSISTANT)
    assert first.content == expected and first.interrupted
    assert server.sockets[0].closed_by_client and conv.errors() == []
