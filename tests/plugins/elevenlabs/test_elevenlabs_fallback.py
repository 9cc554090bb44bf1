"""FallbackTTS from a failing ElevenLabsTTS to the offline PiperTTS: the agent still speaks.

ElevenLabs fails the way the service does (a refused key, an exhausted
quota over HTTP or as a 1008 close of the socket, a server error, a host
that cannot be reached) before any audio; FallbackTTS marks it down and
Piper says the reply, which reaches the transcript whole.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from elevenlabs_server import ElevenLabsServer
from elevenlabs_shapes import detail

from vocalis import Agent, CascadingPipeline
from vocalis.providers.fallback import ConnectOptions, FallbackTTS
from vocalis.testing import Conversation, FakeLLM, FakeSTT, FakeVAD
from vocalis_elevenlabs import ElevenLabsTTS
from vocalis_piper import PiperTTS

Make = Callable[..., ElevenLabsTTS]
REPLY = "Your table is booked. See you at eight."
QUOTA = "This request exceeds your quota of 10000. You have 12 credits remaining, while 40 credits are required."


@pytest.fixture(scope="module")
def piper() -> PiperTTS:
    return PiperTTS()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Each failure is set on both paths (the socket's handshake and the HTTP
# endpoint): FallbackTTS may speak through the provider's stream or its
# synthesize(), and either must fail the way the service does.
FAILURES: list[Any] = [
    pytest.param(
        {"handshake_status": 401, "http_status": 401, "http_body": detail("invalid_api_key", "Invalid API key")},
        {},
        id="http-401-key",
    ),
    pytest.param(
        {"handshake_status": 401, "http_status": 401, "http_body": detail("quota_exceeded", QUOTA)},
        {},
        id="http-401-quota",
    ),
    pytest.param(
        {"handshake_status": 500, "http_status": 500, "http_body": {"detail": "Internal Server Error"}},
        {},
        id="http-500",
    ),
    pytest.param(
        {
            "close_after_messages": 2,
            "close_reason": "quota exceeded",
            "error_message": {"message": QUOTA, "error": "quota_exceeded", "code": 1008},
        },
        {"transport": "websocket"},
        id="socket-1008-quota",
    ),
    pytest.param({}, {"base_url": "unreachable"}, id="unreachable"),
]


@pytest.mark.parametrize(("behaviour", "overrides"), FAILURES)
async def test_piper_speaks_when_elevenlabs_fails(
    make_tts: Make, server: ElevenLabsServer, piper: PiperTTS, behaviour: dict[str, Any], overrides: dict[str, Any]
) -> None:
    for name, value in behaviour.items():
        setattr(server.behaviour, name, value)
    if overrides.get("base_url") == "unreachable":
        overrides = {"base_url": f"http://127.0.0.1:{_closed_port()}", "timeout": 5}
    eleven = make_tts(**overrides)
    tts = FallbackTTS([eleven, piper], connect=ConnectOptions(timeout=30, probe_interval=600))
    changes: list[dict[str, Any]] = []
    tts.events.on("availability_changed", changes.append)
    llm = FakeLLM([REPLY])
    pipeline = CascadingPipeline(stt=FakeSTT(["book a table"]), llm=llm, tts=tts, vad=FakeVAD(), turn_detector=None)
    async with Conversation(Agent("Be brief."), pipeline) as conv:
        await conv.user_speaks(0.6)
        await conv.wait_for_agent_turn(timeout=60)
    await tts.aclose()
    assert conv.agent_turns() == [REPLY] and conv.errors() == []
    frames = conv.transport.audio_output.frames
    assert {p.frame.sample_rate for p in frames} == {piper.sample_rate}  # Piper's voice
    assert conv.agent_audio_seconds() > 1.0
    assert [(c["provider"], c["available"]) for c in changes] == [("tts:elevenlabs", False)]
    if "base_url" not in overrides:  # ElevenLabs was asked, and refused
        assert server.speeches or server.sockets
