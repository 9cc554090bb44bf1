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

FAKES_PLUGIN = """
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
"""


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


def loud_seconds(path: Path) -> tuple[float, float]:
    """When the first and the last loud sample of a WAV file play."""
    audio = read_wav(path)
    loud = np.flatnonzero(np.abs(np.frombuffer(audio.data, dtype=np.int16).astype(float)) > 1000)
    assert loud.size
    return loud[0] / audio.sample_rate, loud[-1] / audio.sample_rate


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
    # The user's speech (mixed in) starts at 0.5 s; the agent answers after the user stops at 1.5 s.
    # In real time the input lands where it was heard: never early, late by however
    # long a busy machine kept the loop from delivering it.
    first, last = loud_seconds(out)
    assert first >= 0.45 and last > 2.0
    types = [json.loads(line)["type"] for line in metrics.read_text().splitlines()]
    assert types[0] == "session" and "turn" in types and types[-1] == "summary"
    # On the virtual clock (--fast) the timeline is exact, however busy the machine.
    fast = tmp_path / "fast.wav"
    result = CliRunner().invoke(cli, ["talk", "--fast", "--input", str(source), "--output", str(fast), "--mix-input"])
    assert result.exit_code == 0, result.output
    assert "agent: I can answer questions." in result.stdout
    first, last = loud_seconds(fast)
    assert first == pytest.approx(0.5, abs=0.05) and last > 2.0


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
    failing = FAKES_PLUGIN.replace("register(FakeLLM, default=True)", "register(BrokenLLM, default=True)").replace(
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

    # A model that takes real time (the clock of --text is virtual: it stands
    # still while a model works, and --timeout counts real seconds).
    slow = failing.replace(
        "raise self.error('the server is down')", "import asyncio, time; await asyncio.to_thread(time.sleep, 3)"
    )
    dists.install("vocalis-slow", slow)
    monkeypatch.setenv("VOCALIS_PLUGINS", "slow")
    result = CliRunner().invoke(cli, ["talk", "--text", "hello", "--timeout", "0.5"])
    assert result.exit_code == 1 and "did not finish within --timeout 0.5 s" in result.output


def sentences_wav(path: Path, count: int, pauses: list[float], rate: int = 16_000) -> Path:
    """``count`` one-second "sentences" of speech with the given pauses between them."""
    pieces = [np.zeros(int(0.3 * rate), dtype=np.int16)]
    for index in range(count):
        pieces.append(tone(1.0, rate).to_numpy())
        pieces.append(np.zeros(int((pauses[index] if index < len(pauses) else 0.3) * rate), dtype=np.int16))
    write_wav(path, np.concatenate(pieces), rate)
    return path


def you_lines(output: str) -> list[str]:
    return [line.removeprefix("you:   ") for line in output.splitlines() if line.startswith("you:")]


@pytest.mark.parametrize("final_delay", ["0.1", "1.5"])
def test_talk_prints_every_sentence_in_real_time_and_with_fast(fakes, tmp_path: Path, monkeypatch, final_delay) -> None:
    sentences = ["one two", "three four", "five six", "seven eight"]
    monkeypatch.setenv("VOCALIS_STT_FAKE_TRANSCRIPTS", json.dumps(sentences))
    monkeypatch.setenv("VOCALIS_STT_FAKE_FINAL_DELAY", final_delay)
    source = sentences_wav(tmp_path / "four.wav", 4, [0.5, 1.5, 0.8])
    real = CliRunner().invoke(cli, ["talk", "--input", str(source)])
    fast = CliRunner().invoke(cli, ["talk", "--input", str(source), "--fast"])
    assert real.exit_code == 0 and fast.exit_code == 0, real.output + fast.output
    # The same words reach the agent, once and in order, in both; how they are
    # grouped into turns depends on timing (a loaded machine merges more).
    for result in (real, fast):
        assert " ".join(you_lines(result.stdout)).split() == " ".join(sentences).split(), result.stdout


def test_talk_latency_table_is_defined_and_never_negative(fakes, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VOCALIS_STT_FAKE_TRANSCRIPTS", json.dumps(["one two", "three four"]))
    source = sentences_wav(tmp_path / "two.wav", 2, [0.5])
    result = CliRunner().invoke(cli, ["talk", "--input", str(source)])
    assert result.exit_code == 0, result.output
    table = result.stdout.split("turn  ", 1)[1].splitlines()[1:]
    cells = [cell for row in table if row.strip() for cell in row.split()[1:]]
    assert cells and all(cell == "-" or int(cell) >= 0 for cell in cells), table
    help_text = CliRunner().invoke(cli, ["talk", "--help"]).output
    for column in ("stt ms", "eou ms", "llm ttft ms", "tts ttfb ms", "e2e ms"):
        assert column in help_text


def test_talk_says_when_no_speech_was_heard(fakes, tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    write_wav(silent, np.zeros(16_000 * 2, dtype=np.int16), 16_000)
    result = CliRunner().invoke(cli, ["talk", "--input", str(silent), "--fast"])
    assert result.exit_code == 1
    assert f"no speech heard in {silent}" in result.output


def test_talk_timeout_prints_the_partial_reply_marked_and_fails(fakes, dists, tmp_path: Path, monkeypatch) -> None:
    # The reply starts, then the model stalls for real seconds: --timeout
    # (real time, not counting the agent's audio playing) cuts it off.
    stalling = FAKES_PLUGIN.replace("register(FakeLLM, default=True)", "register(StallingLLM, default=True)").replace(
        "from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD",
        "import asyncio, time\n"
        "from vocalis.providers.llm import ChatChunk\n"
        "from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD\n"
        "class StallingLLM(FakeLLM):\n"
        "    name = 'stalling'\n"
        "    async def chat(self, ctx, *, tools=(), tool_choice=None):\n"
        "        yield ChatChunk(text='Let me think about that. ')\n"
        "        await asyncio.to_thread(time.sleep, 8)\n"
        "        yield ChatChunk(text='Here is the rest.')\n",
    )
    dists.install("vocalis-stalling", stalling)
    monkeypatch.setenv("VOCALIS_PLUGINS", "stalling")
    source = speech_wav(tmp_path / "in.wav")
    result = CliRunner().invoke(cli, ["talk", "--input", str(source), "--fast", "--timeout", "1"])
    assert result.exit_code == 1, result.output
    agent = [line for line in result.stdout.splitlines() if line.startswith("agent:")]
    assert agent == ["agent: Let me think about that. [cut off: --timeout]"], result.stdout
    assert "did not finish within --timeout 1 s" in result.output


def test_talk_waits_for_a_long_reply_to_play(fakes, tmp_path: Path, monkeypatch) -> None:
    # Playing the reply is not waiting: a reply longer than --timeout is heard whole.
    # Twelve different sentences (one said twice would be a loop, and cut off).
    long_reply = " ".join(f"This reply goes on, part {n}." for n in range(1, 13))
    monkeypatch.setenv("VOCALIS_LLM_FAKE_RESPONSES", json.dumps([long_reply]))
    source = speech_wav(tmp_path / "in.wav")
    result = CliRunner().invoke(cli, ["talk", "--input", str(source), "--timeout", "2"])
    assert result.exit_code == 0, result.output
    assert f"agent: {long_reply}" in result.stdout


def test_talk_text_waits_for_the_greeting(fakes, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "greeter.py").write_text(
        "from vocalis import Agent\n\n"
        "class Greeter(Agent):\n"
        "    async def on_enter(self):\n"
        "        await self.session.say('Welcome aboard, how can I help you today?')\n\n"
        "def make():\n    return Greeter('Be kind.')\n"
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["talk", "--text", "what can you do", "--agent", "greeter:make"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith(("you:", "agent:"))]
    assert lines == [
        "agent: Welcome aboard, how can I help you today?",
        "you:   what can you do",
        "agent: I can answer questions.",
    ]
