"""Only what was heard is reported: ``on_speech_out`` follows playout (pauses
included, never for audio cut off), and after an interruption or a provider
failure the agent's turn and the chat context hold only the words played."""

from __future__ import annotations

import asyncio

import pytest
from session_helpers import conversation, pipeline

from vocalis import Agent
from vocalis.chat import ChatRole
from vocalis.providers.audio_output import AudioOutput
from vocalis.testing import Conversation, FakeSTT, FakeTTS, Fault, FaultyTTS, run_virtual, tone

TWO = "First sentence here. Second one follows."
FIRST = len("First sentence here.") * 0.05  # FakeTTS: 50 ms per character


def announced(conv: Conversation) -> list[tuple[float, str]]:
    return [(e.time, e.payload["text"]) for e in conv.events if e.name == "on_speech_out"]


def test_a_pause_holds_back_the_next_sentences_announcement() -> None:
    async def main() -> None:
        async with conversation() as conv:
            output = conv.session.audio_output
            handle = await conv.session.say(TWO)
            await asyncio.sleep(0.5)
            output.pause()
            await asyncio.sleep(1.5)
            assert [text for _, text in announced(conv)] == ["First sentence here."]
            output.resume()
            await handle
            ended = conv.now
        (t0, first), (t1, second) = announced(conv)
        assert (first, second) == ("First sentence here.", "Second one follows.")
        assert t1 - t0 == pytest.approx(FIRST + 1.5, abs=1e-6)  # after the pause, not 1.5 s early
        assert ended - t0 == pytest.approx(FIRST + len("Second one follows.") * 0.05 + 1.5, abs=0.03)
        assert conv.agent_turns() == [TWO]

    run_virtual(main())


def test_a_false_interruption_delays_the_announcement_by_the_pause() -> None:
    async def main() -> None:
        p = pipeline(stt=FakeSTT([""], final_delay=0.1))
        async with Conversation(Agent("x"), p) as conv:
            handle = await conv.session.say(TWO)
            await conv.silence(0.3)
            await conv.user_speaks(0.7)  # a cough: the agent pauses, then resumes
            await conv.wait_for_speech(handle)
        assert len(conv.named("false_interruption")) == 1 and not handle.interrupted
        frames = conv.transport.audio_output
        paused_at = frames.clears[0]
        resumed_at = next(f.time for f in frames.frames if f.time > paused_at)
        (t0, _), (t1, second) = announced(conv)
        assert second == "Second one follows."
        assert resumed_at - paused_at > 1.0
        assert t1 - t0 == pytest.approx(FIRST + (resumed_at - paused_at), abs=1e-6)

    run_virtual(main())


def test_sentences_cut_off_while_paused_are_never_announced() -> None:
    async def main() -> None:
        async with conversation() as conv:
            output = conv.session.audio_output
            handle = await conv.session.say(TWO)
            await asyncio.sleep(0.5)
            output.pause()
            await asyncio.sleep(1.5)  # past the time the second sentence would have played
            conv.session.interrupt()
            await handle
            await asyncio.sleep(3.0)
        assert [text for _, text in announced(conv)] == ["First sentence here."]
        assert handle.interrupted and handle.text == "First"  # half of the first sentence: 1 of 3 words
        message = conv.session.agent.chat_context.items[-1]
        assert message.content == "First" and message.interrupted

    run_virtual(main())


def test_marks_follow_playout_and_are_dropped_with_cleared_audio() -> None:
    async def main() -> None:
        output = AudioOutput()
        fired: list[tuple[str, float]] = []
        loop = asyncio.get_running_loop()
        assert not output.add_mark(0.0, lambda: fired.append(("idle", loop.time())))
        t0 = loop.time()
        for _ in range(50):  # 1 s of audio, queued at once
            await output.capture_frame(tone(0.02, 16_000))
        for at in (0.0, 0.4, 0.8):
            output.add_mark(at, lambda at=at: fired.append((f"{at}", loop.time() - t0)))
        await asyncio.sleep(0.2)
        output.pause()
        await asyncio.sleep(1.0)
        output.resume()
        await asyncio.sleep(0.3)
        output.clear_buffer()  # at 0.5 s of audio: the mark at 0.8 s never fires
        await asyncio.sleep(2.0)
        assert [name for name, _ in fired] == ["0.0", "0.4"]
        assert fired[0][1] == pytest.approx(0.0, abs=1e-6)
        assert fired[1][1] == pytest.approx(1.4, abs=1e-6)  # 0.4 s of audio + the 1 s pause

    run_virtual(main())


SAY = "One two three four. Five six seven eight nine ten."


def failing_tts() -> FaultyTTS:
    # The first sentence is synthesised whole; the second fails after 40 frames (0.78 s of
    # its 1.5 s are sent: the stream holds a frame back).
    return FaultyTTS(FakeTTS(), Fault.RAISE_MID_STREAM, after_chunks=40, skip=1)


def test_a_tts_failure_mid_sentence_keeps_only_the_words_played() -> None:
    async def main() -> None:
        async with conversation(tts=failing_tts()) as conv:
            handle = await conv.session.say(SAY)
            await conv.wait_for_speech(handle)
        played = conv.agent_audio_seconds()
        assert played == pytest.approx(0.96 + 0.78, abs=1e-6)
        assert [e["source"] for e in conv.errors()] == ["tts:fake"]
        # 0.78 s of a sentence the first one's pace makes 1.52 s long: 3 of its 6 words.
        assert conv.agent_turns() == ["One two three four. Five six seven"]
        assert handle.text == "One two three four. Five six seven" and not handle.interrupted
        (message,) = conv.session.agent.chat_context.messages(ChatRole.ASSISTANT)
        assert message.content == "One two three four. Five six seven"

    run_virtual(main())


def test_after_a_failure_the_cut_is_where_playout_stopped_not_what_was_sent() -> None:
    async def main() -> None:
        async with conversation(tts=failing_tts()) as conv:
            handle = await conv.session.say(SAY)
            await asyncio.sleep(0.01)
            assert conv.errors()  # the TTS failed at once; its audio is still playing
            await asyncio.sleep(1.2)
            conv.session.interrupt()  # 0.24 s into the second sentence: not one word of it
            await handle
        assert conv.agent_turns() == ["One two three four."]
        assert conv.session.agent.chat_context.items[-1].content == "One two three four."
        assert [text for _, text in announced(conv)] == ["One two three four.", "Five six seven eight nine ten."]

    run_virtual(main())


def test_a_failure_before_any_sentence_was_complete_drops_what_was_not_played() -> None:
    async def main() -> None:
        tts = FaultyTTS(FakeTTS(), Fault.RAISE_MID_STREAM, after_chunks=3)
        async with conversation(tts=tts) as conv:
            handle = await conv.session.say("Hello there, how are you doing today?")
            await conv.wait_for_speech(handle)
        assert conv.agent_audio_seconds() == pytest.approx(0.04, abs=1e-6)
        assert conv.agent_turns() == [""]  # 40 ms is not a word
        assert conv.session.agent.chat_context.messages(ChatRole.ASSISTANT) == []

    run_virtual(main())
