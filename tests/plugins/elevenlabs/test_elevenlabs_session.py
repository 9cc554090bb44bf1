"""A whole agent session speaking through ElevenLabsTTS and the local protocol server.

The LLM streams its reply word by word; the words reach the socket as they
are written, each sentence is flushed, and the audio played is exactly the
audio the server made. When the reply is interrupted, the socket is closed
(the server stops generating) and the transcript keeps only what was played.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from elevenlabs_server import ElevenLabsServer

from vocalis import Agent, CascadingPipeline
from vocalis.chat import ChatRole
from vocalis.testing import Conversation, FakeLLM, FakeSTT, FakeVAD
from vocalis.testing.fakes import FakeResponse
from vocalis_elevenlabs import ElevenLabsTTS

Make = Callable[..., ElevenLabsTTS]
REPLY = "Sure, here is the plan for today. First we pack the bags. Then we drive down to the coast."
SENTENCES = ["Sure, here is the plan for today.", "First we pack the bags.", "Then we drive down to the coast."]


def pipeline(tts: ElevenLabsTTS, reply: FakeResponse, transcripts: list[str] | None = None) -> CascadingPipeline:
    return CascadingPipeline(
        stt=FakeSTT(transcripts or []), llm=FakeLLM([reply]), tts=tts, vad=FakeVAD(), turn_detector=None
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
