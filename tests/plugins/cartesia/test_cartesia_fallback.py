"""FallbackTTS([CartesiaTTS(), PiperTTS()]): when Cartesia fails before its first audio
(a refused key, a dropped connection, no key at all), the offline voice speaks instead.

Nothing here depends on timing: each failure is the server's on every
request, the background probe that could bring Cartesia back never fires
within a test, and the waits are on events with generous timeouts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cartesia_server import CartesiaServer

from vocalis import Agent, CascadingPipeline
from vocalis.providers.fallback import ConnectOptions, FallbackTTS
from vocalis.testing import Conversation, FakeLLM, FakeSTT, FakeVAD
from vocalis_cartesia import CartesiaTTS
from vocalis_piper import PiperTTS

REPLY = "The offline voice still answers you."
NO_PROBE = 3600.0  # a failed provider is probed back this often: never within a test


@pytest.fixture(scope="module")
def piper() -> PiperTTS:
    return PiperTTS()


async def converse(tts: FallbackTTS) -> Conversation:
    pipeline = CascadingPipeline(
        stt=FakeSTT(["hello?"]), llm=FakeLLM([REPLY]), tts=tts, vad=FakeVAD(), turn_detector=None
    )
    async with Conversation(Agent("Be brief."), pipeline) as conv:
        await conv.user_speaks(0.6)
        await conv.wait_for_agent_turn(1, timeout=90)
    return conv


@pytest.mark.parametrize(
    "failure",
    [
        {"refuse_status": 401},  # a refused key: not recoverable, Cartesia is skipped
        {"close_after_chunks": 0},  # the connection drops before any audio
        {"fail_status": 503},
    ],
)
async def test_the_offline_voice_takes_over(
    server: CartesiaServer,
    make_tts: Callable[..., CartesiaTTS],
    piper: PiperTTS,
    failure: dict[str, Any],
) -> None:
    for name, value in failure.items():
        setattr(server, name, value)
    tts = FallbackTTS([make_tts(), piper], connect=ConnectOptions(timeout=60, probe_interval=NO_PROBE))
    changes: list[dict[str, Any]] = []
    tts.events.on("availability_changed", changes.append)
    conv = await converse(tts)
    await tts.aclose()

    assert conv.agent_turns() == [REPLY]
    assert conv.errors() == []
    assert server.handshakes, "Cartesia was asked first (the fallback opens its stream)"
    assert [(c["provider"], c["available"]) for c in changes] == [("tts:cartesia", False)]
    # Cartesia made no audio: every frame is the offline voice's.
    assert not any(context.chunks for context in server.context_list())
    frames = conv.transport.audio_output.frames
    assert conv.agent_audio_seconds() > 1.0 and frames, "the offline voice spoke the reply"
    assert {p.frame.sample_rate for p in frames} == {piper.sample_rate}


async def test_no_key_falls_back_without_a_request(server: CartesiaServer, piper: PiperTTS) -> None:
    cartesia = CartesiaTTS(base_url=server.url, _env_file=None)
    tts = FallbackTTS([cartesia, piper], connect=ConnectOptions(timeout=60, probe_interval=NO_PROBE))
    changes: list[dict[str, Any]] = []
    tts.events.on("availability_changed", changes.append)
    conv = await converse(tts)
    await tts.aclose()
    await cartesia.aclose()
    assert conv.agent_turns() == [REPLY] and conv.agent_audio_seconds() > 1.0
    assert {p.frame.sample_rate for p in conv.transport.audio_output.frames} == {piper.sample_rate}
    assert "VOCALIS_TTS_CARTESIA_API_KEY" in changes[0]["error"]
    assert server.bytes_requests == [] and server.handshakes == []
