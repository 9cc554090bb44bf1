"""A phone call on the real offline stack: Silero VAD, Whisper STT, Piper TTS.

The caller's question is a real recording sent as Twilio sends it (8 kHz
μ-law in 20 ms media messages, in real time); the LLM is a fake that
repeats what it was told, so the test checks what Whisper heard through
the telephone codec and that Piper's answer comes back as call audio.
"""

from __future__ import annotations

import asyncio
import re
import wave
from pathlib import Path

import numpy as np
import pytest

for needed in ("vocalis_silero", "vocalis_whisper", "vocalis_piper"):
    pytest.importorskip(needed, reason="needs the offline stack (tox env `all`)")

from ws_harness import TOKEN, Harness, echo_answer, silence_pcm, twilio_call

from vocalis import CascadingPipeline, EOUConfig
from vocalis.testing import FakeLLM
from vocalis_piper import PiperTTS
from vocalis_silero import SileroVAD
from vocalis_whisper import WhisperSTT

pytestmark = pytest.mark.slow

QUESTION = (
    Path(__file__).resolve().parents[2] / "data" / "speech" / "utt05.wav"
)  # "How much is twenty three plus forty two?"


def phone_audio(path: Path) -> np.ndarray:
    """The recording as a phone line carries it: 8 kHz (the μ-law step is the client's)."""
    import soxr

    with wave.open(str(path)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return np.round(soxr.resample(samples, rate, 8000)).astype(np.int16)


class OfflineHarness(Harness):
    def make_pipeline(self) -> CascadingPipeline:
        pipeline = CascadingPipeline(
            stt=WhisperSTT(),
            llm=FakeLLM([echo_answer]),
            tts=PiperTTS(),
            vad=SileroVAD(),
            turn_detector=None,
            # The end of turn waits for every final still owed (up to
            # stt_timeout): on a loaded machine Whisper may take longer than
            # the VAD's pause inside the question, and this test is about what
            # it heard through the codec, not about the turn split.
            eou_config=EOUConfig(min_delay=0.3, max_delay=0.3, stt_timeout=30.0),
        )
        self.pipelines.append(pipeline)
        return pipeline


async def test_a_spoken_question_over_the_phone_is_heard_and_answered() -> None:
    warm = OfflineHarness().make_pipeline()
    await warm.prewarm()  # load the models before the call, as `vocalis serve` does
    await warm.aclose()
    async with OfflineHarness() as harness:
        call = await twilio_call(harness)
        await call.connected()
        await call.start({"token": TOKEN})
        await harness.agent_made.wait()
        session = harness.session()
        turns: list[str] = []
        session.on("user_turn", lambda event: turns.append(event["text"]))

        await call.send_pcm(silence_pcm(0.3, 8000), realtime=True)
        await call.send_pcm(phone_audio(QUESTION), realtime=True)
        await call.send_pcm(silence_pcm(1.0, 8000), realtime=True)
        await call.wait_for(lambda: len(call.marks) == 1, timeout=60)

        assert len(turns) == 1, turns
        heard = re.sub(r"[^a-z0-9 ]", " ", turns[0].lower())
        assert ("23" in heard or "twenty three" in heard) and ("42" in heard or "forty two" in heard), turns
        answer = f"You said {turns[0]}."  # what the echoing LLM answered, for Piper to say
        assert harness.pipelines[-1].llm.requests[-1].chat_ctx.last_message("user").content == turns[0]

        # Piper's voice, as μ-law, roughly as long as it takes to say the answer.
        audio = call.pcm().astype(np.float64)
        seconds = len(audio) / 8000
        assert 0.04 * len(answer) < seconds < 0.2 * len(answer), (seconds, answer)
        frames = audio[: len(audio) // 160 * 160].reshape(-1, 160)
        loud = np.sqrt((frames**2).mean(axis=1)) > 300
        assert loud.mean() > 0.4  # mostly speech, not silence
        assert call.violations == []

        await call.stop()
        assert await asyncio.wait_for(call.wait_closed(), 10) == 1000
        assert session.close_reason == "hangup"
