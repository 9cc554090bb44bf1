"""Bad input and failing providers: reported as errors, the session keeps going."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from session_helpers import conversation

from vocalis import Agent, AudioFormatError, AudioFrame
from vocalis.testing import FakeLLM, FakeResponse, FakeSTT, FakeTTS, run_virtual, tone


def test_odd_length_pcm_and_bad_rates_are_reported_and_nothing_is_lost() -> None:
    async def main() -> None:
        async with conversation(transcripts=["still works"], responses=["Yes it does."]) as conv:
            conv.session.push_pcm(b"\x00\x01\x02", 16_000)
            conv.session.push_pcm(b"\x00\x00" * 160, 1_000)
            conv.session.push_pcm(b"\x00\x00" * 160, 16_000, channels=0)
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
        messages = [e["message"] for e in conv.errors()]
        assert len(messages) == 3 and all(e["source"] == "audio input" for e in conv.errors())
        assert "not a whole number of int16 samples" in messages[0]
        assert "sample rate" in messages[1]
        assert conv.agent_turns() == ["Yes it does."]

    run_virtual(main())


def test_nan_and_oversized_audio_are_rejected_with_clear_errors() -> None:
    with pytest.raises(AudioFormatError, match="NaN"):
        AudioFrame.from_numpy(np.array([0.0, np.nan], dtype=np.float32), 16_000)
    with pytest.raises(AudioFormatError, match="exceeds"):
        AudioFrame(bytes(2 * 16_000 * 31), 16_000)


@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100, 48_000])
def test_user_audio_at_other_rates_is_resampled(rate: int) -> None:
    async def main() -> None:
        async with conversation(transcripts=["hello"], responses=["Hi."]) as conv:
            conv.sample_rate = rate
            conv._speech = tone(0.02, rate)
            conv._silence = AudioFrame.silence(0.02, rate)
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
        assert conv.user_turns() == ["hello"]
        assert conv.errors() == []

    run_virtual(main())


def test_stereo_user_audio_is_mixed_down() -> None:
    async def main() -> None:
        async with conversation(transcripts=["stereo"], responses=["Heard."]) as conv:
            mono = tone(0.02, 16_000).to_numpy()
            conv._speech = AudioFrame.from_numpy(np.stack([mono, mono], axis=1), 16_000)
            conv._silence = AudioFrame.silence(0.02, 16_000, channels=2)
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
        assert conv.user_turns() == ["stereo"]

    run_virtual(main())


def test_llm_failing_mid_stream_ends_the_turn_and_the_next_turn_works() -> None:
    async def main() -> None:
        llm = FakeLLM(
            [
                FakeResponse("Part of an answer.", error=ConnectionResetError("stream reset")),
                "A whole answer.",
            ]
        )
        async with conversation(transcripts=["first", "second"], llm=llm) as conv:
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
        errors = conv.errors()
        assert len(errors) == 1
        assert errors[0]["source"] == "llm:fake" or errors[0]["source"] == "llm"
        assert "stream reset" in errors[0]["message"]
        assert conv.agent_turns() == ["Part of an answer.", "A whole answer."]
        assert conv.agent_states()[-2] == "idle"

    run_virtual(main())


def test_llm_failing_before_first_token_leaves_agent_idle() -> None:
    def boom(ctx, tools):
        raise TimeoutError("no answer from server")

    async def main() -> None:
        llm = FakeLLM([boom, "Recovered."])
        async with conversation(llm=llm) as conv:
            handle = await conv.session.reply("hello")
            assert handle.done()
            assert conv.session.agent_state.value == "idle"
            await conv.session.reply("again")
        assert "no answer from server" in conv.errors()[0]["message"]
        assert conv.agent_turns()[-1] == "Recovered."

    run_virtual(main())


def test_tts_failure_is_reported_with_the_provider_name() -> None:
    async def main() -> None:
        tts = FakeTTS(fail_on="forbidden")
        async with conversation(tts=tts) as conv:
            await (await conv.session.say("This word is forbidden here."))
            await (await conv.session.say("This one is fine."))
        assert conv.errors()[0]["source"] == "tts:fake"
        assert "cannot speak" in conv.errors()[0]["message"]
        assert conv.agent_turns()[-1] == "This one is fine."
        assert tts.spoken == ["This one is fine."]

    run_virtual(main())


def test_empty_say_and_unspeakable_text() -> None:
    async def main() -> None:
        async with conversation() as conv:
            empty = await conv.session.say("")
            assert empty.discarded
            dots = await conv.session.say("...")
            await dots
            assert not dots.interrupted
        assert conv.errors()[0]["source"] == "say"
        assert conv.agent_audio_seconds() == 0

    run_virtual(main())


def test_failing_event_handler_does_not_break_the_session() -> None:
    async def main() -> None:
        async with conversation(transcripts=["hi"], responses=["Hello."]) as conv:

            def bad_handler(payload):
                raise ValueError("handler bug")

            async def bad_async_handler(payload):
                raise ValueError("async handler bug")

            conv.session.on("user_state_changed", bad_handler)
            conv.session.on("agent_state_changed", bad_async_handler)
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
            await asyncio.sleep(0)
        assert conv.agent_turns() == ["Hello."]

    run_virtual(main())


def test_silent_stt_result_does_not_start_a_turn() -> None:
    async def main() -> None:
        stt = FakeSTT(["", "real words"])
        async with conversation(stt=stt, responses=["Answer."]) as conv:
            await conv.user_speaks(0.4)  # a cough: recognised as nothing
            await conv.silence(2.0)
            assert conv.user_turns() == []
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
        assert conv.user_turns() == ["real words"]

    run_virtual(main())


def test_agent_never_stuck_speaking_after_interrupt_near_tool_call() -> None:
    async def main() -> None:
        from vocalis import function_tool

        @function_tool
        async def wait_a_bit() -> str:
            """Wait."""
            await asyncio.sleep(0.5)
            return "ok"

        llm = FakeLLM([FakeResponse("Checking.", tool_calls=[("wait_a_bit", "{}")]), "Done checking now."])
        async with conversation(Agent("x", tools=[wait_a_bit]), ["stop that"], llm=llm) as conv:
            await conv.session.reply("check", wait_for_playback=False)
            await asyncio.sleep(0.3)
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn(2)
            await conv.silence(2.0)
            assert conv.session.agent_state.value in ("idle", "listening")
            assert not conv.session.audio_output.speaking

    run_virtual(main())


@pytest.mark.parametrize("streaming", [False, True])
def test_a_failed_stt_request_does_not_leave_the_session_deaf(streaming: bool) -> None:
    from vocalis.pipeline.config import EOUConfig
    from vocalis.providers.base import ProviderError

    class FlakySTT(FakeSTT):
        """Fails the first utterance (like a 429), then recognises normally."""

        failures = 1

        async def recognize(self, frames, *, language=None):  # type: ignore[no-untyped-def]
            if self.failures and any(f.to_numpy().any() for f in frames):
                self.failures -= 1
                self.next_transcript()  # this utterance's words are lost
                raise self.error("HTTP 429: slow down", recoverable=True)
            return await super().recognize(frames, language=language)

        def stream(self, *, language=None):  # type: ignore[no-untyped-def]
            stream = super().stream(language=language)
            if self.failures:
                self.failures -= 1
                original = stream.push_frame

                def push_then_fail(frame):  # type: ignore[no-untyped-def]
                    original(frame)
                    stream.fail(ProviderError("HTTP 429: slow down", provider=self.label))

                stream.push_frame = push_then_fail  # type: ignore[method-assign]
            return stream

    async def main() -> None:
        stt = FlakySTT(["lost to the error", "what time is it"], streaming=streaming)
        config = EOUConfig(speculative_stt=0)
        async with conversation(stt=stt, responses=["It is noon."], eou_config=config) as conv:
            await conv.user_speaks(0.6, then_silence=2.0)
            assert not conv.session.pipeline.turns.turn_pending  # the lost utterance let go of the turn
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
        assert [e["source"] for e in conv.errors()] == ["stt:fake"]
        assert "slow down" in conv.errors()[0]["message"]
        # A streaming recogniser restarted mid-utterance may still catch its end.
        assert conv.user_turns()[-1] == "what time is it"
        assert len(conv.agent_turns()) == len(conv.user_turns()) >= 1

    run_virtual(main())
