"""The shared provider conformance suite, run against the openai realtime provider."""

from __future__ import annotations

import pytest

from vocalis import RealTimePipeline, make_plugin_manager
from vocalis.testing.conformance import ProviderConformance
from vocalis_openai.realtime import OpenAIRealtime


class TestOpenAIRealtimeConformance(ProviderConformance):
    @pytest.fixture
    def provider(self) -> OpenAIRealtime:
        return OpenAIRealtime(_env_file=None, api_key="sk-conformance")


def test_registered_as_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_REALTIME_OPENAI_VOICE", "alloy")
    pipeline = RealTimePipeline("openai", registry=make_plugin_manager().registry)
    assert isinstance(pipeline.model, OpenAIRealtime)
    assert pipeline.model.settings.voice == "alloy" and pipeline.model.label == "realtime:openai"
    assert pipeline.describe() == {"realtime": "realtime:openai", "model": "gpt-realtime"}
