"""The README's chain, ``FallbackTTS([ElevenLabsTTS(), CartesiaTTS(), PiperTTS()])``.

Each hosted provider talks to its own protocol server (this plugin's and
the cartesia plugin's); the first that answers speaks, a failing one is
marked down and the next takes over, and Piper speaks when both hosted
services fail. Needs vocalis-cartesia too (it runs in the ``all`` env).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("vocalis_cartesia", reason="needs vocalis-cartesia too: runs in `all`")

sys.path.insert(0, str(Path(__file__).parents[1] / "cartesia"))  # the Cartesia protocol server

from cartesia_server import API_KEY as CARTESIA_KEY
from cartesia_server import CartesiaServer
from elevenlabs_server import ElevenLabsServer
from elevenlabs_shapes import detail

from vocalis import Agent, CascadingPipeline
from vocalis.providers.fallback import ConnectOptions, FallbackTTS
from vocalis.testing import Conversation, FakeLLM, FakeSTT, FakeVAD
from vocalis_cartesia import CartesiaTTS
from vocalis_elevenlabs import ElevenLabsTTS
from vocalis_piper import PiperTTS

REPLY = "Your order is on its way. It should arrive by noon."


@pytest.fixture(scope="module")
def piper() -> PiperTTS:
    return PiperTTS()


@pytest.fixture
async def cartesia(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[CartesiaServer]:
    monkeypatch.delenv("CARTESIA_API_KEY", raising=False)
    async with CartesiaServer() as running:
        yield running
    assert running.violations == [], "malformed requests were sent to Cartesia"


async def speak(chain: FallbackTTS) -> tuple[Conversation, list[tuple[str, bool]]]:
    changes: list[dict[str, Any]] = []
    chain.events.on("availability_changed", changes.append)
    pipeline = CascadingPipeline(
        stt=FakeSTT(["where is my order"]), llm=FakeLLM([REPLY]), tts=chain, vad=FakeVAD(), turn_detector=None
    )
    async with Conversation(Agent("Be brief."), pipeline) as conv:
        await conv.user_speaks(0.6)
        await conv.wait_for_agent_turn(timeout=90)
    await chain.aclose()
    assert conv.agent_turns() == [REPLY] and conv.errors() == []
    assert conv.agent_audio_seconds() > 1.0
    return conv, [(c["provider"], c["available"]) for c in changes]


def chain(make_tts: Callable[..., ElevenLabsTTS], cartesia: CartesiaServer, piper: PiperTTS) -> FallbackTTS:
    hosted = CartesiaTTS(api_key=CARTESIA_KEY, base_url=cartesia.url, _env_file=None)
    return FallbackTTS([make_tts(), hosted, piper], connect=ConnectOptions(timeout=60, probe_interval=3600))


async def test_elevenlabs_speaks_first(
    make_tts: Callable[..., ElevenLabsTTS], server: ElevenLabsServer, cartesia: CartesiaServer, piper: PiperTTS
) -> None:
    conv, changes = await speak(chain(make_tts, cartesia, piper))
    assert changes == [] and (server.speeches or server.sockets) and not cartesia.bytes_requests
    assert {p.frame.sample_rate for p in conv.transport.audio_output.frames} == {24_000}


async def test_cartesia_takes_over_from_elevenlabs(
    make_tts: Callable[..., ElevenLabsTTS], server: ElevenLabsServer, cartesia: CartesiaServer, piper: PiperTTS
) -> None:
    # Refused on both paths: FallbackTTS may use the stream (socket) or synthesize() (HTTP).
    server.behaviour.handshake_status = 401
    server.behaviour.http_status = 401
    server.behaviour.http_body = detail("quota_exceeded", "This request exceeds your quota.")
    conv, changes = await speak(chain(make_tts, cartesia, piper))
    assert changes == [("tts:elevenlabs", False)]
    assert (server.speeches or server.sockets) and (cartesia.bytes_requests or cartesia.connections)
    assert {p.frame.sample_rate for p in conv.transport.audio_output.frames} == {24_000}


async def test_piper_speaks_when_both_hosted_services_fail(
    make_tts: Callable[..., ElevenLabsTTS], server: ElevenLabsServer, cartesia: CartesiaServer, piper: PiperTTS
) -> None:
    server.behaviour.handshake_status = 500
    server.behaviour.http_status = 500
    cartesia.refuse_status = 401
    conv, changes = await speak(chain(make_tts, cartesia, piper))
    # Both are marked down; in which order depends on which failure shows first
    # (Cartesia's prewarm already meets its refusal, ElevenLabs' voice lookup does not).
    assert sorted(changes) == [("tts:cartesia", False), ("tts:elevenlabs", False)]
    assert {p.frame.sample_rate for p in conv.transport.audio_output.frames} == {piper.sample_rate}
