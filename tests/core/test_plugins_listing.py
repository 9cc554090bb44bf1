"""``vocalis plugins``: aliases, and providers that lack their kind's methods."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from vocalis.cli.main import cli
from vocalis.cli.plugins_cmd import missing_methods
from vocalis.providers.base import ProviderKind
from vocalis.providers.stt import STT
from vocalis.providers.tts import TTS
from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD

PLUGIN = """
from typing import ClassVar
from vocalis import hookimpl
from vocalis.providers.stt import STT
from vocalis.providers.tts import TTS


class EmptySTT(STT):
    name: ClassVar[str] = "empty"


class BatchSTT(STT):
    name: ClassVar[str] = "batch"

    async def recognize(self, frames, *, language=None):
        raise RuntimeError("not called by the listing")


class StreamOnlySTT(STT):
    name: ClassVar[str] = "streamonly"

    def stream(self, *, language=None):
        raise RuntimeError("not called by the listing")


class SilentTTS(TTS):
    name: ClassVar[str] = "silent"


@hookimpl
def vocalis_register_stt(register):
    register(EmptySTT)
    register(BatchSTT, aliases=["batch-stt", "b"])
    register(StreamOnlySTT)


@hookimpl
def vocalis_register_tts(register):
    register(SilentTTS, aliases=["quiet"])
"""


@pytest.fixture
def rows(dists, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, object]]:
    monkeypatch.setenv("VOCALIS_PLUGINS", dists.install("vocalis-partial", PLUGIN))
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    return {f"{row['kind']}:{row['name']}": row for row in json.loads(result.stdout) if row["plugin"] == "partial"}


def test_aliases_are_listed(rows: dict[str, dict[str, object]]) -> None:
    assert rows["stt:batch"]["aliases"] == ["batch-stt", "b"]
    assert rows["tts:silent"]["aliases"] == ["quiet"]
    assert rows["stt:empty"]["aliases"] == []


def test_complete_provider_is_ok(rows: dict[str, dict[str, object]]) -> None:
    assert (rows["stt:batch"]["status"], rows["stt:batch"]["error"]) == ("ok", None)


def test_providers_that_implement_nothing_are_flagged(rows: dict[str, dict[str, object]]) -> None:
    empty, silent = rows["stt:empty"], rows["tts:silent"]
    assert empty["status"] == "incomplete"
    assert "EmptySTT implements neither recognize() nor stream()" in str(empty["error"])
    assert silent["status"] == "incomplete"
    assert "SilentTTS does not implement synthesize()" in str(silent["error"])


def test_stream_only_stt_must_declare_streaming(rows: dict[str, dict[str, object]]) -> None:
    row = rows["stt:streamonly"]
    assert row["status"] == "incomplete"
    assert "streaming = False but no recognize()" in str(row["error"])


def test_table_shows_aliases_and_the_problem(dists, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_PLUGINS", dists.install("vocalis-partial", PLUGIN))
    header, *lines = CliRunner().invoke(cli, ["plugins"]).stdout.splitlines()
    assert header.split() == ["KIND", "NAME", "ALIASES", "PLUGIN", "DISTRIBUTION", "VERSION", "STATUS"]
    cells = {tuple(line.split()[:2]): line for line in lines}
    assert cells["stt", "batch"].split()[2:4] == ["batch-stt,b", "partial"]
    assert cells["stt", "batch"].rstrip().endswith("ok")
    assert cells["tts", "silent"].split()[6] == "incomplete"
    assert "synthesize()" in cells["tts", "silent"]


class _Streaming(STT):
    streaming = True

    async def recognize(self, frames: object, *, language: str | None = None) -> object:  # type: ignore[override]
        raise AssertionError


def test_missing_methods_by_kind() -> None:
    for kind, cls in [
        (ProviderKind.STT, FakeSTT),
        (ProviderKind.TTS, FakeTTS),
        (ProviderKind.LLM, FakeLLM),
        (ProviderKind.VAD, FakeVAD),
    ]:
        assert missing_methods(kind, cls) is None, cls
    assert missing_methods(ProviderKind.TTS, TTS) == "TTS does not implement synthesize(): it would fail at run time"
    assert "streaming = True but no stream()" in str(missing_methods(ProviderKind.STT, _Streaming))
