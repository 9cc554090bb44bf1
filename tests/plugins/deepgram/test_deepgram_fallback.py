"""A failing Deepgram hands over to the offline providers: FallbackSTT with
WhisperSTT (a real recording still becomes the user's turn) and FallbackTTS
(the reply is still spoken)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from deepgram_helpers import say, utterance
from deepgram_listen_server import ListenServer
from deepgram_speak_server import SpeakServer

from vocalis import Agent, CascadingPipeline
from vocalis.providers.fallback import ConnectOptions, FallbackSTT, FallbackTTS
from vocalis.testing import Conversation, FakeLLM, FakeSTT, FakeTTS, FakeVAD
from vocalis.testing.conformance import word_error_rate
from vocalis_deepgram import DeepgramSTT, DeepgramTTS
from vocalis_whisper import WhisperSTT


@pytest.mark.parametrize("failure", [{"status": 401}, {"cut_requests": True}], ids=["refused", "closing"])
async def test_whisper_takes_over_from_a_failing_deepgram(
    listen: ListenServer, make_stt: Callable[..., DeepgramSTT], failure: dict[str, Any]
) -> None:
    listen.reset(**failure)
    frames, text = utterance(0)
    stt = FallbackSTT([make_stt(), WhisperSTT()], connect=ConnectOptions(probe_interval=60.0))
    changes: list[dict[str, Any]] = []
    stt.events.on("availability_changed", changes.append)
    pipeline = CascadingPipeline(
        stt=stt, llm=FakeLLM(["It is sunny."]), tts=FakeTTS(), vad=FakeVAD(), turn_detector=None
    )
    async with Conversation(Agent("Be brief."), pipeline) as conv:
        await conv.silence(0.3)
        await say(conv, frames)
        await conv.wait_for_agent_turn(timeout=30)
    await stt.aclose()

    (turn,) = conv.user_turns()
    assert word_error_rate(text, turn) <= 0.15, f"{turn!r} for {text!r}"
    assert [(c["provider"], c["available"]) for c in changes] == [("stt:deepgram", False)]
    # Asked first (live, or one request per utterance: FallbackSTT may use either), then marked down.
    assert listen.posts + listen.upgrades >= 1, "Deepgram was asked first, then marked down"


async def test_the_reply_is_spoken_when_deepgram_tts_fails(
    speak: SpeakServer, make_tts: Callable[..., DeepgramTTS]
) -> None:
    speak.reset(status=503)
    backup = FakeTTS()
    tts = FallbackTTS([make_tts(), backup], connect=ConnectOptions(probe_interval=60.0))
    pipeline = CascadingPipeline(stt=FakeSTT([]), llm=FakeLLM(["Ok."]), tts=tts, vad=FakeVAD(), turn_detector=None)
    async with Conversation(Agent("Be brief."), pipeline) as conv:
        handle = await conv.session.say("All booked for seven.")
        await conv.wait_for_speech(handle, timeout=20)
    await tts.aclose()
    assert backup.spoken == ["All booked for seven."]
    assert conv.agent_audio_seconds() > 0
    assert len(speak.requests) == 0  # refused before the body was read: the status is the answer
