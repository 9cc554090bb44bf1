"""The core's TTS conformance suite against ElevenLabsTTS and the local protocol server."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from elevenlabs_server import ElevenLabsServer

from vocalis.testing.conformance import TTSConformance
from vocalis_elevenlabs import ElevenLabsTTS


class TestElevenLabsWebSocketConformance(TTSConformance):
    """Streams over the input-streaming socket; synthesize() over HTTP."""

    @pytest.fixture
    def provider(self, make_tts: Callable[..., ElevenLabsTTS], server: ElevenLabsServer) -> ElevenLabsTTS:
        return make_tts(transport="websocket")


class TestElevenLabsHttpConformance(TTSConformance):
    """Streams sentence by sentence over HTTP."""

    @pytest.fixture
    def provider(self, make_tts: Callable[..., ElevenLabsTTS], server: ElevenLabsServer) -> ElevenLabsTTS:
        return make_tts(transport="http")
