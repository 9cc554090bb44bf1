"""A recogniser that refuses for good (a bad key) is retried rarely, and still recovers; talk says so."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from vocalis import Agent, CascadingPipeline
from vocalis.cli.main import cli
from vocalis.cli.talk_cmd import _merged
from vocalis.pipeline.inputs import REFUSED_CAP
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.stt import STTStream
from vocalis.testing import Conversation, FakeLLM, FakeSTT, FakeTTS, FakeVAD, Fault, FaultySTT, run_virtual, tone
from vocalis.transports.file import write_wav


class Opened(FaultySTT):
    """Records when each stream was opened."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opened: list[float] = []

    def stream(self, *, language: str | None = None) -> STTStream:
        self.opened.append(asyncio.get_running_loop().time())
        return super().stream(language=language)


def refusing(error: ProviderError) -> Opened:
    return Opened(FakeSTT(["hello again"]), Fault.RAISE_AT_START, times=None, error=error)


def conversation(stt: FaultySTT) -> Conversation:
    pipeline = CascadingPipeline(stt=stt, llm=FakeLLM(["Hi."]), tts=FakeTTS(), vad=FakeVAD(), turn_detector=None)
    return Conversation(Agent("x"), pipeline)


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 1) for a, b in zip(times, times[1:], strict=False)]


def test_a_refused_stt_is_reopened_ever_more_rarely_and_recovers_once_the_key_works() -> None:
    async def main() -> None:
        refused = ProviderError("HTTP 401: invalid key", provider="stt:fake", recoverable=False, kind=ErrorKind.AUTH)
        stt = refusing(refused)
        async with conversation(stt) as conv:
            await conv.silence(300.0)
            # Opened at the start, reopened at once, then ever more rarely: it was a 401 every 5 s.
            assert gaps(stt.opened) == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
            assert len(conv.errors()) == len(stt.opened) - 1  # the newest one is read after its pause
            assert all(not e["recoverable"] and e["kind"] == "auth" for e in conv.errors())
            stt.injector.times = stt.injector.injected  # the key was fixed
            await conv.silence(REFUSED_CAP)
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
        assert conv.user_turns() == ["hello again"]

    run_virtual(main())


def test_a_recoverable_failure_is_still_retried_within_seconds() -> None:
    async def main() -> None:
        stt = refusing(ProviderError("HTTP 503: busy", provider="stt:fake"))
        async with conversation(stt) as conv:
            await conv.silence(30.0)
        assert gaps(stt.opened)[:6] == [0.0, 0.0, 0.5, 1.0, 2.0, 4.0]
        assert max(gaps(stt.opened)) == 5.0

    run_virtual(main())


def test_talk_merges_errors_that_differ_only_by_a_request_id() -> None:
    errors = [
        "stt:deepgram: HTTP 401: INVALID_AUTH (request bea0473a-be01-457a-a70e-9eec8e6112bf)",
        "stt:deepgram: HTTP 401: INVALID_AUTH (request 979dc3e4-c2f8-42e2-8d6f-4d4f457619e1)",
        "llm:openai: HTTP 500 (request id req_8f3a2c1d9e)",
        "llm:openai: HTTP 500 (request id req_17be04aa2f)",
        "tts:x: HTTP 401 (request_id=5f1e9a77c3)",
        "tts:fake: timed out after 10 s waiting for audio",
    ]
    assert _merged(errors) == [
        "stt:deepgram: HTTP 401: INVALID_AUTH (request …) (2 times)",
        "llm:openai: HTTP 500 (request id …) (2 times)",
        "tts:x: HTTP 401 (request_id=5f1e9a77c3)",  # alone: printed as it came
        "tts:fake: timed out after 10 s waiting for audio",
    ]


REFUSING_PLUGIN = """
from vocalis import hookimpl
from vocalis.providers.base import ErrorKind
from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD
import uuid


class RefusedSTT(FakeSTT):
    name = "refused"

    def stream(self, *, language=None):
        stream = super().stream(language=language)
        refused = f"HTTP 401: invalid key (request {uuid.uuid4()})"
        stream.fail(self.error(refused, recoverable=False, kind=ErrorKind.AUTH))
        return stream


@hookimpl
def vocalis_register_stt(register):
    register(RefusedSTT, default=True)

@hookimpl
def vocalis_register_llm(register):
    register(FakeLLM, default=True)

@hookimpl
def vocalis_register_tts(register):
    register(FakeTTS, default=True)

@hookimpl
def vocalis_register_vad(register):
    register(FakeVAD, default=True)
"""


@pytest.mark.parametrize("fast", [False, True])
def test_talk_says_the_stt_failed_rather_than_no_speech_heard(dists, monkeypatch, tmp_path: Path, fast: bool) -> None:
    dists.install("vocalis-refusing", REFUSING_PLUGIN)
    monkeypatch.setenv("VOCALIS_PLUGINS", "refusing")
    monkeypatch.setenv("VOCALIS_LLM_FAKE_RESPONSES", json.dumps(["Hi."]))
    wav = tmp_path / "speech.wav"
    quiet = np.zeros(8_000, dtype=np.int16)
    write_wav(wav, np.concatenate([quiet, tone(1.0, 16_000).to_numpy(), quiet]), 16_000)
    result = CliRunner().invoke(cli, ["talk", "--input", str(wav), *(["--fast"] if fast else [])])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert lines[0].startswith("error: stt:refused: HTTP 401: invalid key (request …)")
    assert lines[-1] == f"error: talk: no words recognised in {wav}: stt:refused failed (see above)"
    assert "no speech heard" not in result.output
