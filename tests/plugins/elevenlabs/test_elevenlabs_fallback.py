"""FallbackTTS from a failing ElevenLabsTTS to the offline PiperTTS: the agent still speaks.

ElevenLabs fails the way the service does (a refused key, an exhausted
quota over HTTP or as a 1008 close of the socket, a server error, a host
that cannot be reached) before any audio; FallbackTTS marks it down and
Piper says the reply, which reaches the transcript whole. A socket that
drops between two sentences hands the rest of the reply to Piper.

Nothing here depends on timing: the failures are the server's on every
request, the address with no server is held by this test (so no other
process can answer there), the background probe that could bring
ElevenLabs back never fires within a test, and the waits are on events
with generous timeouts.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from elevenlabs_server import MS_PER_CHAR, ElevenLabsServer
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


# A failed provider is probed back every probe_interval: never within a test.
NO_PROBE = 3600.0


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A local port that refuses connections for the whole test.

    Bound but not listening, and held: a port merely closed could be taken
    meanwhile by another test run's server, which would then answer.
    """
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


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
    make_tts: Make,
    server: ElevenLabsServer,
    piper: PiperTTS,
    dead_port: int,
    behaviour: dict[str, Any],
    overrides: dict[str, Any],
) -> None:
    for name, value in behaviour.items():
        setattr(server.behaviour, name, value)
    if overrides.get("base_url") == "unreachable":
        overrides = {"base_url": f"http://127.0.0.1:{dead_port}", "timeout": 30}
    eleven = make_tts(**overrides)
    tts = FallbackTTS([eleven, piper], connect=ConnectOptions(timeout=60, probe_interval=NO_PROBE))
    changes: list[dict[str, Any]] = []
    tts.events.on("availability_changed", changes.append)
    llm = FakeLLM([REPLY])
    pipeline = CascadingPipeline(stt=FakeSTT(["book a table"]), llm=llm, tts=tts, vad=FakeVAD(), turn_detector=None)
    async with Conversation(Agent("Be brief."), pipeline) as conv:
        await conv.user_speaks(0.6)
        await conv.wait_for_agent_turn(timeout=60)
    await tts.aclose()
    assert conv.agent_turns() == [REPLY] and conv.errors() == []
    assert [(c["provider"], c["available"]) for c in changes] == [("tts:elevenlabs", False)]
    # ElevenLabs made no audio: every frame is Piper's voice.
    assert all(not s.audio for s in server.sockets)
    frames = conv.transport.audio_output.frames
    assert {p.frame.sample_rate for p in frames} == {piper.sample_rate}
    assert conv.agent_audio_seconds() > 1.0
    if "base_url" not in overrides:  # ElevenLabs was asked, and refused
        assert server.speeches or server.sockets


async def test_piper_says_the_rest_when_elevenlabs_fails_between_sentences(
    make_tts: Make, server: ElevenLabsServer, piper: PiperTTS
) -> None:
    # The socket drops (1011) right after the first sentence's audio, its
    # trailing pause included: the first sentence ended, so Piper says the rest.
    first = "Your table is booked."
    server.behaviour.trailing_ms = 100
    chunks = -(-((1 + len(first)) * MS_PER_CHAR + 100) // server.behaviour.chunk_ms)
    server.behaviour.close_after_chunks, server.behaviour.close_code = chunks, 1011
    eleven = make_tts(transport="websocket")
    tts = FallbackTTS([eleven, piper], connect=ConnectOptions(timeout=60, probe_interval=NO_PROBE))
    changes: list[dict[str, Any]] = []
    tts.events.on("availability_changed", changes.append)
    pipeline = CascadingPipeline(
        stt=FakeSTT(["book a table"]), llm=FakeLLM([REPLY]), tts=tts, vad=FakeVAD(), turn_detector=None
    )
    async with Conversation(Agent("Be brief."), pipeline) as conv:
        await conv.user_speaks(0.6)
        await conv.wait_for_agent_turn(timeout=60)
    await tts.aclose()
    assert conv.agent_turns() == [REPLY] and conv.errors() == []
    assert [(c["provider"], c["available"]) for c in changes] == [("tts:elevenlabs", False)]
    (socket,) = server.sockets
    assert [g.strip() for g in socket.generations] == [first]
    # ElevenLabs' first sentence (its pause, which led into nothing, left out), then Piper's voice.
    frames = [p.frame for p in conv.transport.audio_output.frames]
    hosted = [f for f in frames if f.sample_rate == eleven.sample_rate]
    assert frames[: len(hosted)] == hosted and {f.sample_rate for f in frames[len(hosted) :]} == {piper.sample_rate}
    assert b"".join(f.data for f in hosted) == bytes(socket.audio)[: len(b"".join(f.data for f in hosted))]
    assert sum(f.duration for f in hosted) == pytest.approx((1 + len(first)) * MS_PER_CHAR / 1000)
    spoken = [e.payload["text"] for e in conv.events if e.name == "on_speech_out"]
    assert spoken == [first, "See you at eight."]
