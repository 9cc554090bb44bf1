"""The shared provider conformance suite for GeminiLive, and both providers' registration."""

from __future__ import annotations

import pytest

from vocalis import RealTimePipeline, make_plugin_manager
from vocalis.testing.conformance import ProviderConformance
from vocalis_google import GeminiLive, GeminiLLM


class TestGeminiLiveConformance(ProviderConformance):
    @pytest.fixture
    def provider(self) -> GeminiLive:
        return GeminiLive(_env_file=None, api_key="AIza-conformance-0000000000000")


def test_registered_as_google_and_gemini(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_REALTIME_GOOGLE_VOICE", "Charon")
    registry = make_plugin_manager().registry
    pipeline = RealTimePipeline("gemini", registry=registry)
    assert isinstance(pipeline.model, GeminiLive)
    assert pipeline.model.settings.voice == "Charon" and pipeline.model.label == "realtime:google"
    assert pipeline.describe() == {
        "realtime": "realtime:google",
        "model": "gemini-2.5-flash-native-audio-preview-12-2025",
    }
    llm = registry.create("llm", "gemini")
    assert isinstance(llm, GeminiLLM) and llm.label == "llm:google"


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_LLM_GOOGLE_API_KEY", "AIza-from-env-00000000000000")
    monkeypatch.setenv("VOCALIS_LLM_GOOGLE_MODEL", "gemini-2.5-flash-lite")
    monkeypatch.setenv("VOCALIS_LLM_GOOGLE_THINKING_BUDGET", "0")
    llm = GeminiLLM(_env_file=None)
    assert llm.settings.model == "gemini-2.5-flash-lite" and llm.settings.thinking_budget == 0
    assert llm.settings.api_key is not None and "AIza-from-env" not in repr(llm)
    with pytest.raises(ValueError, match="scheme"):
        GeminiLive(_env_file=None, base_url="example.invalid")


def test_one_thinking_setting_of_the_two_the_api_takes() -> None:
    live = GeminiLive(_env_file=None, api_key="AIza-conformance-0000000000000", thinking_level="minimal")
    assert live.setup_message("")["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "minimal"}
    for cls in (GeminiLLM, GeminiLive):
        with pytest.raises(ValueError, match="not both"):
            cls(_env_file=None, thinking_budget=0, thinking_level="low")
