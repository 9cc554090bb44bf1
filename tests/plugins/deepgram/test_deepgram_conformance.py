"""The core's STT and TTS conformance suites against the Deepgram providers and the local servers.

The listen server answers speech with the clip's own text, so the word error
rate must be 0: the checks test the plumbing (live stream order, close,
cancel, concurrency), not a model. The TTS suite runs twice: over the Speak
WebSocket (the default ``stream()``) and sentence by sentence over HTTP.
"""

from __future__ import annotations

import pytest
from deepgram_helpers import stt_for, tts_for, utterance
from deepgram_listen_server import ListenServer
from deepgram_speak_server import SpeakServer

from vocalis.audio import AudioFrame
from vocalis.testing.conformance import STTConformance, TTSConformance
from vocalis_deepgram import DeepgramSTT, DeepgramTTS

# Each check runs its own event loops (asyncio.run); an HTTP session left on a
# finished loop is let go without closing, which Python reports at collection.
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


class TestDeepgramSTTConformance(STTConformance):
    max_wer = 0.0

    @pytest.fixture
    def provider(self, listen: ListenServer) -> DeepgramSTT:
        return stt_for(listen)

    @pytest.fixture
    def speech(self, listen: ListenServer) -> tuple[list[AudioFrame], str]:
        frames, text = utterance()
        listen.behaviour.default = text
        return frames, text


class TestDeepgramTTSConformance(TTSConformance):
    @pytest.fixture
    def provider(self, speak: SpeakServer) -> DeepgramTTS:
        return tts_for(speak)


class TestDeepgramHTTPTTSConformance(TTSConformance):
    @pytest.fixture
    def provider(self, speak: SpeakServer) -> DeepgramTTS:
        return tts_for(speak, websocket=False)
