"""Core and provider settings from the environment and .env files."""

from __future__ import annotations

import io
from pathlib import Path
from typing import ClassVar

import pytest
from loguru import logger
from pydantic import SecretStr

from vocalis.providers.llm import LLM
from vocalis.settings import (
    ProviderSettings,
    VocalisSettings,
    env_token,
    provider_env_prefix,
    provider_settings_config,
)


class KeyedLLM(LLM):
    name: ClassVar[str] = "keyed-cloud"

    class Settings(ProviderSettings):
        model_config = provider_settings_config("llm", "keyed-cloud")
        api_key: SecretStr = SecretStr("")
        model: str = "small"


def test_core_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_STT", "whisper")
    monkeypatch.setenv("VOCALIS_LOG_LEVEL", "debug")
    monkeypatch.setenv("VOCALIS_DISABLED_PLUGINS", "a, b,,c")
    settings = VocalisSettings()
    assert settings.stt == "whisper"
    assert settings.provider_for("stt") == "whisper"
    assert settings.provider_for("llm") is None
    assert settings.log_level == "DEBUG"
    assert settings.disabled_plugins == ["a", "b", "c"]
    assert settings.plugins is None


def test_core_settings_from_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("VOCALIS_TTS=piper\nVOCALIS_PLUGINS=piper,whisper\n")
    settings = VocalisSettings()
    assert settings.tts == "piper"
    assert settings.plugins == ["piper", "whisper"]


def test_env_wins_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("VOCALIS_LLM_KEYED_CLOUD_MODEL=from-file\n")
    assert KeyedLLM().settings.model == "from-file"
    monkeypatch.setenv("VOCALIS_LLM_KEYED_CLOUD_MODEL", "from-env")
    assert KeyedLLM().settings.model == "from-env"
    assert KeyedLLM(model="explicit").settings.model == "explicit"


def test_provider_prefix_rule() -> None:
    assert env_token("faster-whisper") == "FASTER_WHISPER"
    assert provider_env_prefix("stt", "faster-whisper") == "VOCALIS_STT_FASTER_WHISPER_"
    assert KeyedLLM.Settings.model_config["env_prefix"] == "VOCALIS_LLM_KEYED_CLOUD_"


def test_secret_never_in_repr_or_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_LLM_KEYED_CLOUD_API_KEY", "sk-very-secret-123")
    llm = KeyedLLM()
    assert llm.settings.api_key.get_secret_value() == "sk-very-secret-123"
    sink = io.StringIO()
    handler = logger.add(sink, level="TRACE", format="{message} {extra}")
    try:
        logger.info("settings {} provider {}", llm.settings, llm)
        logger.bind(settings=llm.settings.model_dump()).info("dumped")
    finally:
        logger.remove(handler)
    text = sink.getvalue() + repr(llm) + str(llm.settings) + repr(llm.settings)
    assert "sk-very-secret-123" not in text
    assert "**********" in text


def test_settings_override_existing_settings_object() -> None:
    base = KeyedLLM.Settings(model="a")
    llm = KeyedLLM(settings=base, model="b")
    assert llm.settings.model == "b"
    assert KeyedLLM(settings=base).settings is base
