"""Audio mode of `vocalis eval`: lines spoken into the session, the agent heard back.

Fakes on a virtual clock: the voice is a tone TTS, the session's VAD hears the
tone as speech and its scripted STT turns it into the user's words; the
listener is a second scripted STT that stands for what a user would hear.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from vocalis.audio import AudioFrame
from vocalis.cli.eval_cmd import eval_command
from vocalis.evaluation import evaluate_audio, parse_scenarios
from vocalis.evaluation.runner import AudioSides, run_scenarios
from vocalis.pipeline.cascading import CascadingPipeline
from vocalis.session.agent import Agent
from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, run_virtual
from vocalis.transports.file import write_wav


def _pipeline(user_said: list[str], replies: list[str]) -> CascadingPipeline:
    return CascadingPipeline(
        stt=FakeSTT(user_said, streaming=False), llm=FakeLLM(replies), tts=FakeTTS(), vad=FakeVAD(), turn_detector=None
    )


def test_a_spoken_line_is_recognised_answered_and_heard_back() -> None:
    async def main() -> None:
        pipeline = _pipeline(["what time is it", "thanks"], ["It is noon.", "Bye."])
        listener = FakeSTT(["it is noon"], streaming=False)
        async with evaluate_audio(Agent(instructions="x"), pipeline, voice=FakeTTS(), listener=listener) as ev:
            result = await ev.say("What time is it?")
            assert result.recognized == "what time is it"
            assert result.replies == ["It is noon."]
            assert result.heard == "it is noon"
            result.expect.reply.contains("noon")
            result.expect.no_interruption()
            # Latency counts from the end of the user's audio, not from the start of the line.
            assert result.latency is not None and 0.0 < result.latency < 5.0
            assert "(recognised)" in result.describe()
            # The listener heard only this turn's audio: the next turn's reply is heard alone.
            listener.transcripts.append("bye")
            second = await ev.say("Thanks.")
            assert second.heard == "bye" and second.replies == ["Bye."]
            assert [turn.user for turn in ev.turns] == ["What time is it?", "Thanks."]

    run_virtual(main())


def test_an_audio_file_is_played_as_the_users_turn(tmp_path: Path) -> None:
    wav = tmp_path / "hello.wav"
    t = np.arange(int(0.8 * 16_000)) / 16_000
    write_wav(wav, (np.sin(2 * np.pi * 300 * t) * 8000).astype(np.int16), 16_000)

    async def main() -> None:
        pipeline = _pipeline(["hello there"], ["Hi!"])
        async with evaluate_audio(
            Agent(instructions="x"), pipeline, voice=FakeTTS(), listener=FakeSTT(["hi"], streaming=False)
        ) as ev:
            result = await ev.play(wav)
            assert result.user == str(wav) and result.recognized == "hello there" and result.heard == "hi"

    run_virtual(main())


def test_silence_is_reported_not_waited_on_forever(tmp_path: Path) -> None:
    wav = tmp_path / "quiet.wav"
    write_wav(wav, np.zeros(16_000, dtype=np.int16), 16_000)

    async def main() -> None:
        pipeline = _pipeline([], ["never"])
        async with evaluate_audio(
            Agent(instructions="x"), pipeline, voice=FakeTTS(), listener=FakeSTT([]), timeout=30
        ) as ev:
            result = await ev.play(wav)
            assert result.recognized == "" and result.replies == [] and result.heard == ""
            with pytest.raises(AssertionError, match="non-empty reply"):
                result.expect.reply.not_empty()

    run_virtual(main())


def test_a_pipeline_without_a_tts_needs_a_voice() -> None:
    async def main() -> None:
        pipeline = _pipeline([], [])
        pipeline.tts = None  # type: ignore[assignment]
        with pytest.raises(ValueError, match="pass voice="):
            async with evaluate_audio(Agent(instructions="x"), pipeline, listener=FakeSTT([])):
                pass

    run_virtual(main())


SCENARIOS = """
scenarios:
  - name: spoken
    turns:
      - user: What time is it?
        expect: {contains: noon, no_interruption: true, max_latency: 5}
  - name: played
    turns:
      - audio: {wav}
        expect: {contains: hello}
"""


def test_the_runner_speaks_typed_lines_and_plays_audio_turns(tmp_path: Path) -> None:
    wav = tmp_path / "hello.wav"
    write_wav(wav, (np.ones(12_000) * 6000).astype(np.int16), 16_000)
    scenarios = parse_scenarios(yaml.safe_load(SCENARIOS.replace("{wav}", str(wav))), base=tmp_path)
    listener = FakeSTT(["it is noon", "hello to you"], streaming=False)

    def make() -> tuple[Agent, CascadingPipeline]:
        return Agent(instructions="x"), _pipeline(["what time", "hello"], ["It is noon.", "Hello to you."])

    sides = AudioSides(voice=FakeTTS(), listener=listener)
    outcomes = run_virtual(run_scenarios(scenarios, make, mode="audio", sides=sides))
    assert [o.passed for o in outcomes] == [True, True], [(o.error, [t.failures for t in o.turns]) for o in outcomes]
    # Text mode cannot play a file: the scenario fails with why, the others still run.
    typed = run_virtual(run_scenarios(scenarios, make))
    assert typed[0].passed and not typed[1].passed
    assert "needs audio mode" in (typed[1].error or "")


def test_the_cli_takes_audio_mode_and_refuses_its_options_in_text_mode(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("scenarios:\n  - turns:\n      - user: hi\n")
    result = CliRunner().invoke(eval_command, [str(path), "--voice", "piper"])
    assert result.exit_code == 2 and "--mode audio" in result.output
    help_text = CliRunner().invoke(eval_command, ["--help"]).output
    assert "audio" in help_text and "--listener" in help_text


def test_heard_audio_is_what_played_not_what_was_queued() -> None:
    from vocalis.evaluation.audio import SpokenTurnsTransport

    async def main() -> None:
        import asyncio

        transport = SpokenTurnsTransport(sample_rate=16_000)

        class Sink:
            def push_audio(self, frame: AudioFrame) -> None:
                pass

        await transport.start(Sink())
        output = transport.audio_output
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for _ in range(50):  # one second of agent audio queued at once
            await output.capture_frame(AudioFrame.from_numpy(np.full(320, 1000, dtype=np.int16), 16_000))
        await asyncio.sleep(0.5)
        output.clear_buffer()  # a barge-in half way through
        heard = transport.heard_since(begin)
        assert heard is not None and 0.45 <= heard.duration <= 0.55

    run_virtual(main())
