"""The Vocalis test kit: fake providers, a virtual clock, a conversation driver.

Everything here is for tests of agents and plugins; none of it is a default
provider.
"""

from vocalis.testing.capture import OutputCapture
from vocalis.testing.clock import (
    VirtualTimeDeadlock,
    VirtualTimeLimitExceeded,
    VirtualTimeLoop,
    run_virtual,
    virtual_time,
)
from vocalis.testing.conversation import Conversation, RecordedEvent
from vocalis.testing.fakes import (
    FakeEOU,
    FakeLLM,
    FakeResponse,
    FakeSTT,
    FakeToolSource,
    FakeTransport,
    FakeTTS,
    FakeVAD,
    LLMRequest,
    PlayedFrame,
    RecordingAudioOutput,
    is_speech,
    tone,
)
from vocalis.testing.faults import (
    Fault,
    FaultyEOU,
    FaultyLLM,
    FaultySTT,
    FaultyToolSource,
    FaultyTTS,
    FaultyVAD,
)
from vocalis.testing.faults_duplex import FaultyRealtimeModel, FaultyTransport
from vocalis.testing.realtime import FakeRealtimeModel, FakeRealtimeSession, RealtimeTurn
from vocalis.testing.watchdog import LoopBlock, LoopBlocked, LoopWatchdog

__all__ = [
    "Conversation",
    "FakeEOU",
    "FakeLLM",
    "FakeRealtimeModel",
    "FakeRealtimeSession",
    "FakeResponse",
    "RealtimeTurn",
    "FakeSTT",
    "FakeToolSource",
    "FakeTTS",
    "FakeTransport",
    "FakeVAD",
    "Fault",
    "FaultyEOU",
    "FaultyLLM",
    "FaultyRealtimeModel",
    "FaultySTT",
    "FaultyTTS",
    "FaultyToolSource",
    "FaultyTransport",
    "FaultyVAD",
    "LLMRequest",
    "LoopBlock",
    "LoopBlocked",
    "LoopWatchdog",
    "OutputCapture",
    "PlayedFrame",
    "RecordedEvent",
    "RecordingAudioOutput",
    "VirtualTimeDeadlock",
    "VirtualTimeLimitExceeded",
    "VirtualTimeLoop",
    "is_speech",
    "run_virtual",
    "tone",
    "virtual_time",
]
