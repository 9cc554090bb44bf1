"""Turn-taking scenarios under virtual time: interruptions, backchannels,
false interruptions, end-of-turn waits, preemptive generation, background audio.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from session_helpers import pipeline

from vocalis import Agent, EOUConfig, EOUMode, InterruptConfig, InterruptMode, function_tool
from vocalis.chat import FunctionCall, FunctionCallOutput
from vocalis.session.background import AudioClip, BackgroundAudioConfig
from vocalis.testing import Conversation, FakeEOU, FakeLLM, FakeResponse, FakeSTT, run_virtual

HANGOVER = 0.3  # FakeVAD's min_silence: it reports the end of speech this late
LONG = "This is a long answer that keeps going for quite a while so the user has time to talk over it."  # 4.75 s


def make(transcripts, responses=("OK.",), *, agent=None, stt=None, llm=None, eou=None, **configs):
    stt = stt or FakeSTT(list(transcripts), final_delay=0.1)
    p = pipeline(stt=stt, llm=llm or FakeLLM(list(responses)), eou=eou, **configs)
    return Conversation(agent or Agent("x"), p)


def vad_start_times(conv) -> list[float]:
    return [e.time for e in conv.events if e.name == "user_state_changed" and e.payload["state"] == "speaking"]


def test_01_backchannel_does_not_interrupt_or_start_a_turn() -> None:
    async def main() -> None:
        async with make(["yeah"]) as conv:
            handle = await conv.session.say(LONG)
            await conv.silence(1.0)
            await conv.user_speaks(0.3)
            await conv.wait_for_speech(handle)
        assert not handle.interrupted
        assert conv.user_turns() == []
        assert conv.named("backchannel") == [{"text": "yeah"}]
        assert conv.transport.audio_output.clears == []
        assert conv.agent_turns() == [LONG]

    run_virtual(main())


def test_02_long_backchannel_pauses_then_resumes_the_agent() -> None:
    async def main() -> None:
        async with make(["uh-huh yeah right"]) as conv:
            handle = await conv.session.say(LONG)
            await conv.silence(1.0)
            await conv.user_speaks(0.8)
            await conv.wait_for_speech(handle)
        assert not handle.interrupted
        assert conv.user_turns() == []
        assert "listening" in conv.agent_states() and conv.agent_states().count("speaking") == 2
        # The resumed audio replays from the pause point: nothing is skipped.
        assert handle.text == LONG
        assert conv.session.agent.chat_context.items[-1].interrupted is False

    run_virtual(main())


def test_03_barge_in_stops_audio_within_one_frame_and_marks_the_message() -> None:
    async def main() -> None:
        async with make(["wait what about tomorrow"], ["Tomorrow looks rainy."]) as conv:
            handle = await conv.session.say(LONG)
            await conv.silence(1.0)
            await conv.user_speaks(1.2)
            await conv.wait_for_agent_turn(2)
        decision = vad_start_times(conv)[0] + 0.5  # min_duration of user speech
        assert conv.transport.audio_output.clears[0] == pytest.approx(decision, abs=0.02)
        assert handle.interrupted
        cut = next(m for m in conv.session.agent.chat_context.messages("assistant") if m.interrupted)
        assert LONG.startswith(cut.content) and 0 < len(cut.content) < len(LONG) / 2
        assert conv.user_turns() == ["wait what about tomorrow"]
        assert conv.agent_turns()[-1] == "Tomorrow looks rainy."
        commit = next(e.time for e in conv.events if e.name == "user_turn")
        frames_after = [f for f in conv.transport.audio_output.frames if decision + 0.02 < f.time < commit]
        assert frames_after == []  # nothing more of the interrupted utterance was sent

    run_virtual(main())


def test_04_cough_is_a_false_interruption_and_the_agent_resumes() -> None:
    async def main() -> None:
        async with make([""]) as conv:
            handle = await conv.session.say(LONG)
            await conv.silence(1.0)
            await conv.user_speaks(0.7)  # long enough to pause, no words
            await conv.wait_for_speech(handle)
        assert not handle.interrupted
        assert len(conv.named("false_interruption")) == 1
        assert conv.user_turns() == []
        assert handle.text == LONG
        pause = conv.transport.audio_output.clears[0]
        speech_end = next(
            e.time
            for e in conv.events
            if e.name == "user_state_changed" and e.payload["state"] != "speaking" and e.time > pause
        )
        resumed = [f.time for f in conv.transport.audio_output.frames if f.time > pause]
        assert resumed and resumed[0] == pytest.approx(speech_end + 1.0, abs=1e-6)  # false_interruption_timeout

    run_virtual(main())


def test_05_short_blip_does_nothing() -> None:
    async def main() -> None:
        async with make([""]) as conv:
            handle = await conv.session.say(LONG)
            await conv.silence(1.0)
            await conv.user_speaks(0.2)
            await conv.wait_for_speech(handle)
        assert conv.transport.audio_output.clears == []
        assert not handle.interrupted and conv.named("false_interruption") == []

    run_virtual(main())


def test_06_pause_mid_phone_number_waits_max_delay() -> None:
    async def main() -> None:
        eou = FakeEOU(lambda text: 0.05 if text.endswith("555") else 0.95)
        config = EOUConfig(mode=EOUMode.FIXED, min_delay=0.4, max_delay=2.0)
        async with make(["my number is 555", "1234"], ["Thanks."], eou=eou, eou_config=config) as conv:
            await conv.user_speaks(1.0, then_silence=1.5)  # 1.5 s pause < max_delay
            await conv.user_speaks(0.5)
            await conv.wait_for_agent_turn()
        assert conv.user_turns() == ["my number is 555 1234"]
        turn = conv.named("user_turn")
        commit = next(e.time for e in conv.events if e.name == "user_turn")
        ends = [
            e.time
            for e in conv.events
            if e.name == "user_state_changed" and e.payload["state"] == "idle" and e.time <= commit
        ]
        assert commit - ends[-1] == pytest.approx(0.4 - HANGOVER, abs=1e-6)
        assert len(turn) == 1

    run_virtual(main())


def test_07_incomplete_sentence_gets_the_full_max_delay() -> None:
    async def main() -> None:
        config = EOUConfig(mode=EOUMode.FIXED, min_delay=0.4, max_delay=2.0)
        async with make(["my number is 555"], ["Go on."], eou=FakeEOU(0.05), eou_config=config) as conv:
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
        end = next(e.time for e in conv.events if e.name == "user_state_changed" and e.payload["state"] == "idle")
        commit = next(e.time for e in conv.events if e.name == "user_turn")
        assert commit - end == pytest.approx(2.0 - HANGOVER, abs=1e-6)

    run_virtual(main())


def test_08_confident_sentence_is_answered_after_min_delay() -> None:
    async def main() -> None:
        config = EOUConfig(min_delay=0.45, max_delay=1.5)
        async with make(["what time is it"], ["Noon."], eou=FakeEOU(1.0), eou_config=config) as conv:
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
        end = next(e.time for e in conv.events if e.name == "user_state_changed" and e.payload["state"] == "idle")
        commit = next(e.time for e in conv.events if e.name == "user_turn")
        assert commit - end == pytest.approx(0.45 - HANGOVER, abs=1e-6)
        assert conv.named("end_of_turn_probability")[0]["probability"] == 1.0

    run_virtual(main())


def test_09_barge_in_during_tool_call_records_the_output_once() -> None:
    runs: list[int] = []

    @function_tool
    async def slow_search(query: str) -> str:
        """Search slowly."""
        runs.append(1)
        await asyncio.sleep(3.0)
        return "found it"

    async def main() -> None:
        llm = FakeLLM(
            [
                FakeResponse("Let me search that for you.", tool_calls=[("slow_search", '{"query": "x"}')]),
                "Never spoken.",
                "Sure, what else?",
            ]
        )
        async with make(["actually never mind that"], agent=Agent("x", tools=[slow_search]), llm=llm) as conv:
            await conv.session.reply("search", wait_for_playback=False)
            await conv.silence(0.5)
            await conv.user_speaks(1.2)
            await conv.wait_for_agent_turn(2)
            await conv.silence(4.0)
        assert runs == [1]
        items = conv.session.agent.chat_context.items
        assert sum(isinstance(i, FunctionCall) for i in items) == 1
        assert [i.output for i in items if isinstance(i, FunctionCallOutput)] == ["found it"]
        assert conv.session.agent_state.value in ("idle", "closing", "listening")
        assert not conv.session.audio_output.speaking

    run_virtual(main())


def test_10_non_interruptible_say_finishes_then_the_turn_is_answered() -> None:
    async def main() -> None:
        async with make(["hello are you there"], ["Yes, I am here."]) as conv:
            handle = await conv.session.say(LONG, interruptible=False)
            await conv.silence(1.0)
            await conv.user_speaks(1.5)
            await conv.wait_for_agent_turn(2)
        assert not handle.interrupted and handle.text == LONG
        assert conv.transport.audio_output.clears == []
        assert conv.agent_turns() == [LONG, "Yes, I am here."]

    run_virtual(main())


def test_11_stop_phrase_interrupts_even_as_one_word() -> None:
    async def main() -> None:
        config = InterruptConfig(mode=InterruptMode.STT)
        async with make(["stop"], interrupt_config=config) as conv:
            handle = await conv.session.say(LONG)
            await conv.silence(1.0)
            await conv.user_speaks(0.3)
            await conv.wait_for_speech(handle)
        assert handle.interrupted
        assert conv.named("interruption")[0]["reason"] == "phrase"

    run_virtual(main())


def test_12_stt_mode_ignores_wordless_noise() -> None:
    async def main() -> None:
        config = InterruptConfig(mode=InterruptMode.STT)
        async with make([""], interrupt_config=config) as conv:
            handle = await conv.session.say(LONG)
            await conv.silence(1.0)
            await conv.user_speaks(1.5)
            await conv.wait_for_speech(handle)
        assert not handle.interrupted and conv.transport.audio_output.clears == []

    run_virtual(main())


def test_13_vad_mode_interrupts_on_duration_alone() -> None:
    async def main() -> None:
        config = InterruptConfig(mode=InterruptMode.VAD, min_duration=0.3)
        async with make([""], interrupt_config=config) as conv:
            handle = await conv.session.say(LONG)
            await conv.silence(1.0)
            await conv.user_speaks(0.6)
            await conv.wait_for_speech(handle)
        assert handle.interrupted
        assert conv.transport.audio_output.clears[0] == pytest.approx(vad_start_times(conv)[0] + 0.3, abs=1e-6)

    run_virtual(main())


def test_14_interruptions_disabled() -> None:
    async def main() -> None:
        async with make(["stop stop stop please stop"], interrupt_config=InterruptConfig(enabled=False)) as conv:
            handle = await conv.session.say(LONG)
            await conv.silence(1.0)
            await conv.user_speaks(1.5)
            await conv.wait_for_speech(handle)
        assert not handle.interrupted

    run_virtual(main())


def test_15_without_resume_a_cough_interrupts() -> None:
    async def main() -> None:
        async with make([""], interrupt_config=InterruptConfig(resume_false_interruption=False)) as conv:
            handle = await conv.session.say(LONG)
            await conv.silence(1.0)
            await conv.user_speaks(0.7)
            await conv.wait_for_speech(handle)
        assert handle.interrupted and conv.named("false_interruption") == []

    run_virtual(main())


def test_16_one_word_answer_over_the_agent_waits_for_it_to_finish() -> None:
    async def main() -> None:
        async with make(["Paris"], ["Paris it is."]) as conv:
            handle = await conv.session.say(LONG)
            await conv.silence(1.0)
            await conv.user_speaks(0.4)
            await conv.wait_for_agent_turn(2)
        assert not handle.interrupted
        assert conv.agent_turns() == [LONG, "Paris it is."]
        assert conv.user_turns() == ["Paris"]

    run_virtual(main())


def test_17_stt_watchdog_decides_when_noise_keeps_the_vad_busy() -> None:
    async def main() -> None:
        stt = FakeSTT(["turn on the lights"], word_seconds=0.2)
        config = EOUConfig(min_delay=0.3, stt_watchdog=2.0)
        async with make([], ["Done."], stt=stt, eou_config=config) as conv:
            await conv.user_speaks(8.0)  # words end early, "speech" (noise) goes on
            assert conv.user_turns() == ["turn on the lights"]

    run_virtual(main())


def test_18_missing_final_falls_back_to_the_interim_after_stt_timeout() -> None:
    async def main() -> None:
        stt = FakeSTT(["book a table"], word_seconds=0.2, final_delay=60.0)
        config = EOUConfig(min_delay=0.3, stt_timeout=1.0)
        async with make([], ["Booked."], stt=stt, eou_config=config) as conv:
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn(timeout=5.0)
        assert conv.user_turns() == ["book a table"]

    run_virtual(main())


def test_19_preemptive_generation_is_used_when_the_transcript_holds() -> None:
    async def main() -> None:
        llm = FakeLLM([FakeResponse("It is noon.", ttft=0.4)])
        # The wait (0.9 s after the last word, 0.6 s after the VAD's report)
        # outlasts the final (0.1 s) plus the LLM's TTFT (0.4 s).
        config = EOUConfig(min_delay=0.9, max_delay=0.9, preemptive_generation=True)
        async with make(["what time is it"], llm=llm, eou_config=config) as conv:
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
        assert len(llm.requests) == 1
        commit = next(e.time for e in conv.events if e.name == "user_turn")
        first_audio = conv.transport.audio_output.frames[0].time
        assert first_audio == pytest.approx(commit, abs=1e-6)  # the TTFT was hidden in the wait
        assert conv.named("preemptive_generation")[0]["transcript"] == "what time is it"

    run_virtual(main())


def test_20_preemptive_generation_is_dropped_when_the_user_continues() -> None:
    async def main() -> None:
        llm = FakeLLM([FakeResponse("Answer.", ttft=0.2)])
        config = EOUConfig(min_delay=0.6, max_delay=0.6, preemptive_generation=True)
        async with make(["what time", "is it in tokyo"], llm=llm, eou_config=config) as conv:
            await conv.user_speaks(0.8, then_silence=0.5)
            await conv.user_speaks(0.8)
            await conv.wait_for_agent_turn()
        assert conv.user_turns() == ["what time is it in tokyo"]
        assert llm.requests[-1].chat_ctx.items[-1].content == "what time is it in tokyo"
        assert len(llm.requests) == 2

    run_virtual(main())


def _ambient_clip() -> AudioClip:
    return AudioClip(np.full(24_000, 0.5, dtype=np.float32), 24_000)


def test_21_background_audio_is_mixed_under_the_voice() -> None:
    async def main() -> None:
        conv = make([])
        conv.session.background_audio = BackgroundAudioConfig(ambient=_ambient_clip(), ambient_volume=0.2)
        async with conv:
            await conv.silence(0.2)
            quiet = conv.transport.audio_output.frames[-1].frame.to_numpy()
            handle = await conv.session.say("Hello there.")
            await conv.wait_for_speech(handle)
        assert np.allclose(quiet, 0.1 * 32767, atol=2)  # ambient alone
        frames = conv.transport.audio_output.frames
        start = next(e.time for e in conv.events if e.name == "on_speech_out")
        during = [f.frame.to_numpy().astype(float) for f in frames if start + 0.05 < f.time < start + 0.4]
        mixed = np.concatenate(during) / 32767 - 0.1
        assert np.abs(mixed).max() > 0.2  # the voice (a 0.3 tone) rides on top of the ambient
        assert abs(np.mean(np.concatenate(during)) / 32767 - 0.1) < 0.02  # ambient still there

    run_virtual(main())


def test_22_thinking_sound_only_while_thinking() -> None:
    async def main() -> None:
        thinking = AudioClip(np.full(24_000, 0.5, dtype=np.float32), 24_000)
        conv = make([], [FakeResponse("Done.", ttft=1.0)])
        conv.session.background_audio = BackgroundAudioConfig(thinking=thinking, thinking_volume=0.4)
        async with conv:
            await conv.silence(0.3)
            t0 = conv.now
            handle = await conv.session.reply("go", wait_for_playback=False)
            await conv.wait_for_speech(handle)
            await conv.silence(0.3)
        frames = conv.transport.audio_output.frames
        level = lambda f: float(np.mean(f.frame.to_numpy())) / 32767  # noqa: E731
        before = [level(f) for f in frames if f.time < t0]
        thinking_part = [level(f) for f in frames if t0 + 0.05 < f.time < t0 + 0.95]
        after = [level(f) for f in frames if f.time > conv.now - 0.2]
        assert all(abs(v) < 1e-3 for v in before + after)
        assert all(v == pytest.approx(0.2, abs=0.01) for v in thinking_part)

    run_virtual(main())


def test_23_background_audio_rejects_bad_configs(tmp_path) -> None:
    with pytest.raises(ValueError):
        BackgroundAudioConfig(ambient="office", ambient_volume=2.0)
    with pytest.raises(ValueError, match="unknown built-in clip"):
        AudioClip.builtin("jungle")
    (tmp_path / "bad.wav").write_bytes(b"not a wav")
    from vocalis import AudioFormatError

    with pytest.raises(AudioFormatError, match="not a PCM WAV"):
        AudioClip.from_wav(tmp_path / "bad.wav")
    office = AudioClip.builtin("office")
    assert office.sample_rate == 24_000 and 0.3 < np.abs(office.samples).max() <= 0.5


def test_24_wake_up_is_reset_by_speech_without_words() -> None:
    async def main() -> None:
        fired: list[float] = []
        async with make([""]) as conv:
            conv.session.wake_up = 3.0
            conv.session.on_wake_up = lambda: fired.append(conv.now)
            conv.session._arm_wake_up()
            await conv.silence(2.0)
            await conv.user_speaks(0.3)  # a noise: user activity all the same
            await conv.silence(2.5)
            assert fired == []
            await conv.silence(1.0)
            assert len(fired) == 1

    run_virtual(main())


class CountingSTT(FakeSTT):
    """Hears how many loud frames the audio holds (to tell segments apart)."""

    async def recognize(self, frames, *, language=None):
        from vocalis.providers.stt import SpeechEvent, SpeechEventType
        from vocalis.testing import is_speech

        await asyncio.sleep(self.final_delay)
        self.recognized.append(str(len(frames)))
        loud = sum(is_speech(f) for f in frames)
        return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, f"{loud} loud frames" if loud else "")


def test_25_speculative_final_starts_during_the_vad_hang_over() -> None:
    def final_lag(speculate: float) -> float:
        async def main() -> float:
            stt = CountingSTT(final_delay=0.25, streaming=False)
            config = EOUConfig(min_delay=0.5, speculative_stt=speculate)
            async with make([], ["OK."], stt=stt, eou_config=config) as conv:
                await conv.user_speaks(0.6)
                await conv.wait_for_agent_turn()
            vad_end = next(
                e.time for e in conv.events if e.name == "user_state_changed" and e.payload["state"] == "idle"
            )
            final = next(e.time for e in conv.events if e.name == "on_speech_in" and e.payload["is_final"])
            assert conv.user_turns() == ["30 loud frames"]
            return round(final - vad_end, 6)

        return run_virtual(main())

    assert final_lag(0.0) == pytest.approx(0.25, abs=1e-6)  # recognised after the VAD's report
    # Recognition started 0.12 s into the pause; the VAD reports at 0.3 s (its hang-over).
    assert final_lag(0.12) == pytest.approx(0.12 + 0.25 - HANGOVER, abs=0.021)


def test_26_speculation_is_dropped_when_the_user_goes_on() -> None:
    async def main() -> None:
        stt = CountingSTT(final_delay=0.05, streaming=False)
        config = EOUConfig(min_delay=0.5, speculative_stt=0.1)
        async with make([], ["OK."], stt=stt, eou_config=config) as conv:
            await conv.user_speaks(0.4, then_silence=0.2)  # a pause shorter than the hang-over
            await conv.user_speaks(0.4)
            await conv.wait_for_agent_turn()
        assert conv.user_turns() == ["40 loud frames"]  # the whole utterance, not the first part

    run_virtual(main())


def test_27_audio_turn_detector_hears_the_onset_and_runs_once_per_turn() -> None:
    heard: list[float] = []

    class ListeningEOU(FakeEOU):
        uses_audio = True

        async def predict(self, chat_ctx, *, audio=None):
            heard.append(audio.duration if audio is not None else 0.0)
            return await super().predict(chat_ctx, audio=audio)

    async def main() -> None:
        eou = ListeningEOU(0.9, latency=0.2)
        async with make(["book a table"], ["Done."], eou=eou, eou_config=EOUConfig(min_delay=0.5)) as conv:
            await conv.silence(1.0)
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
        assert conv.user_turns() == ["book a table"]

    run_virtual(main())
    assert len(heard) == 1  # judged once, while the STT worked
    # 0.5 s before the VAD's start, the speech itself, and the VAD's hang-over.
    assert heard[0] == pytest.approx(0.5 + 1.0 + HANGOVER - 0.06, abs=0.05)
