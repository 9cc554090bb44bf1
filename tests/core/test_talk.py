"""The file transport and `vocalis talk`, with fake providers registered as a plugin."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from vocalis.audio import AudioFormatError, AudioFrame
from vocalis.cli.main import cli
from vocalis.testing import tone
from vocalis.transports.file import FileTransport, read_wav, write_wav

FAKES_PLUGIN = '''
from vocalis import hookimpl
from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD

@hookimpl
def vocalis_register_stt(register):
    register(FakeSTT, default=True)

@hookimpl
def vocalis_register_llm(register):
    register(FakeLLM, default=True)

@hookimpl
def vocalis_register_tts(register):
    register(FakeTTS, default=True)

@hookimpl
def vocalis_register_vad(register):
    register(FakeVAD, default=True)
'''


def speech_wav(path: Path, rate: int = 16_000) -> Path:
    quiet = np.zeros(int(0.5 * rate), dtype=np.int16)
    voice = tone(1.0, rate).to_numpy()
    write_wav(path, np.concatenate([quiet, voice, quiet]), rate)
    return path


@pytest.fixture
def fakes(dists, monkeypatch):
    dists.install("vocalis-fakes", FAKES_PLUGIN)
    monkeypatch.setenv("VOCALIS_PLUGINS", "fakes")  # ignore any other installed plugin
    monkeypatch.setenv("VOCALIS_STT_FAKE_TRANSCRIPTS", json.dumps(["what can you do"]))
    monkeypatch.setenv("VOCALIS_LLM_FAKE_RESPONSES", json.dumps(["I can answer questions."]))


def test_wav_round_trip_and_errors(tmp_path: Path) -> None:
    path = speech_wav(tmp_path / "a.wav")
    audio = read_wav(path)
    assert audio.sample_rate == 16_000 and audio.channels == 1
    assert audio.duration == pytest.approx(2.0, abs=0.01)
    assert sum(f.duration for f in audio.frames(0.02)) == pytest.approx(2.0, abs=0.01)
    (tmp_path / "bad.wav").write_bytes(b"RIFF nonsense")
    with pytest.raises(AudioFormatError):
        read_wav(tmp_path / "bad.wav")
    with wave.open(str(tmp_path / "8bit.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80" * 800)
    with pytest.raises(AudioFormatError, match="16-bit"):
        read_wav(tmp_path / "8bit.wav")


def test_talk_over_files_writes_reply_audio_on_the_timeline(fakes, tmp_path: Path) -> None:
    source = speech_wav(tmp_path / "in.wav")
    out = tmp_path / "out.wav"
    metrics = tmp_path / "m.jsonl"
    result = CliRunner().invoke(
        cli, ["talk", "--input", str(source), "--output", str(out), "--metrics", str(metrics), "--mix-input"]
    )
    assert result.exit_code == 0, result.output
    assert "you:   what can you do" in result.stdout
    assert "agent: I can answer questions." in result.stdout
    assert "e2e ms" in result.stdout
    reply = read_wav(out)
    samples = np.frombuffer(reply.data, dtype=np.int16).astype(float)
    rate = reply.sample_rate
    loud = np.flatnonzero(np.abs(samples) > 1000)
    assert loud.size
    # The user's speech (mixed in) starts at 0.5 s; the agent answers after the user stops at 1.5 s.
    assert loud[0] / rate == pytest.approx(0.5, abs=0.05)
    assert loud[-1] / rate > 2.0
    types = [json.loads(line)["type"] for line in metrics.read_text().splitlines()]
    assert types[0] == "session" and "turn" in types and types[-1] == "summary"


def test_talk_text_turn(fakes) -> None:
    result = CliRunner().invoke(cli, ["talk", "--text", "hello there"])
    assert result.exit_code == 0, result.output
    assert "you:   hello there" in result.stdout and "agent: I can answer questions." in result.stdout


def test_talk_needs_input_or_text_and_providers(monkeypatch) -> None:
    monkeypatch.setenv("VOCALIS_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = CliRunner().invoke(cli, ["talk"])
    assert result.exit_code == 2
    result = CliRunner().invoke(cli, ["talk", "--text", "hi"])
    assert result.exit_code == 1 and "no stt provider" in result.output


def test_talk_with_a_custom_agent(fakes, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "myagent.py").write_text(
        "from vocalis import Agent\n\ndef make():\n    return Agent('Be a pirate.', name='Pirate')\n"
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["talk", "--text", "ahoy", "--agent", "myagent:make"])
    assert result.exit_code == 0, result.output
    bad = CliRunner().invoke(cli, ["talk", "--text", "ahoy", "--agent", "myagent:nothing"])
    assert bad.exit_code == 2 and "has no attribute" in bad.output


def test_file_transport_discards_unheard_audio(tmp_path: Path) -> None:
    from vocalis.testing import run_virtual

    async def main() -> None:
        import asyncio

        transport = FileTransport(output=tmp_path / "o.wav")

        class Sink:
            def push_audio(self, frame: AudioFrame) -> None:
                pass

        await transport.start(Sink())
        out = transport.audio_output
        for _ in range(50):  # 1 s of audio delivered at once
            await out.capture_frame(tone(0.02, 24_000))
        out.flush()
        await asyncio.sleep(0.4)
        out.clear_buffer()
        await transport.aclose()

    run_virtual(main())
    audio = read_wav(tmp_path / "o.wav")
    assert audio.duration == pytest.approx(0.4, abs=0.03)


def test_talk_exits_1_when_a_provider_failed_and_text_obeys_the_timeout(fakes, dists, monkeypatch) -> None:
    failing = FAKES_PLUGIN.replace(
        "register(FakeLLM, default=True)", "register(BrokenLLM, default=True)"
    ).replace(
        "from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD",
        "from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD\n"
        "class BrokenLLM(FakeLLM):\n"
        "    name = 'broken'\n"
        "    async def chat(self, ctx, *, tools=(), tool_choice=None):\n"
        "        raise self.error('the server is down')\n"
        "        yield\n",
    )
    dists.install("vocalis-broken", failing)
    monkeypatch.setenv("VOCALIS_PLUGINS", "broken")
    result = CliRunner().invoke(cli, ["talk", "--text", "hello"])
    assert result.exit_code == 1 and "the server is down" in result.output

    slow = failing.replace("raise self.error('the server is down')", "import asyncio; await asyncio.sleep(60)")
    dists.install("vocalis-slow", slow)
    monkeypatch.setenv("VOCALIS_PLUGINS", "slow")
    result = CliRunner().invoke(cli, ["talk", "--text", "hello", "--timeout", "0.5"])
    assert result.exit_code == 1 and "no complete reply within --timeout 0.5 s" in result.output
