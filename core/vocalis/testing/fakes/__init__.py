"""Scriptable fake providers for tests of agents, pipelines and plugins.

They behave like real providers (streams, latencies on the event loop's
clock, cancellation) but compute nothing: under
:func:`vocalis.testing.run_virtual` their latencies cost no wall time.

- :mod:`.signals`: :func:`tone` (what the fakes hear as speech) and :func:`is_speech`.
- :mod:`.audio`: :class:`FakeVAD`, :class:`FakeSTT`, :class:`FakeTTS`.
- :mod:`.language`: :class:`FakeLLM` (with :class:`FakeResponse`), :class:`FakeEOU`,
  :class:`FakeToolSource`.
- :mod:`.transport`: :class:`FakeTransport` and its :class:`RecordingAudioOutput`.
"""

from vocalis.testing.fakes.audio import FakeSTT, FakeTTS, FakeVAD
from vocalis.testing.fakes.language import FakeEOU, FakeLLM, FakeResponse, FakeToolSource, LLMRequest, Script
from vocalis.testing.fakes.signals import is_speech, tone
from vocalis.testing.fakes.transport import FakeTransport, PlayedFrame, RecordingAudioOutput

__all__ = [
    "FakeEOU",
    "FakeLLM",
    "FakeResponse",
    "FakeSTT",
    "FakeTTS",
    "FakeToolSource",
    "FakeTransport",
    "FakeVAD",
    "LLMRequest",
    "PlayedFrame",
    "RecordingAudioOutput",
    "Script",
    "is_speech",
    "tone",
]
