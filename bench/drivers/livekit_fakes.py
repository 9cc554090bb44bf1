"""Zero-latency fake providers and I/O for the LiveKit Agents driver (livekit_driver.py).

Built only on LiveKit's public base classes: vad.VAD/VADStream, stt.STT/RecognizeStream,
llm.LLM/LLMStream, tts.TTS/ChunkedStream, voice.io.AudioInput/AudioOutput.
Imported lazily by the driver, so that its "import" scenario measures a cold import.
"""

from __future__ import annotations

import asyncio
import time

from livekit import rtc
from livekit.agents import APIConnectOptions, llm, stt, tts, utils, vad
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS
from livekit.agents.voice import io

SAMPLE_RATE = 16000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
TTS_SECONDS = 0.1  # contract: 100 ms of 16-bit audio per sentence
# contract: 20 tokens, streamed at once; two sentences -> two TTS calls (200 ms of audio)
LLM_TOKENS = ["Sure", ",", " here", " is", " the", " first", " part", " of", " my", " answer", "."] + [
    " And",
    " this",
    " is",
    " the",
    " second",
    " sentence",
    " of",
    " it",
    ".",
]
assert len(LLM_TOKENS) == 20
USER_TEXT = "what is the weather like today"


# ---------------------------------------------------------------- VAD
class FrameVAD(vad.VAD):
    """No model: a frame whose first sample is non-zero is speech. Zero min speech /
    min silence: START_OF_SPEECH on the first speech frame, END_OF_SPEECH on the
    first silent frame after speech."""

    def __init__(self) -> None:
        super().__init__(capabilities=vad.VADCapabilities(update_interval=FRAME_MS / 1000))
        self.on_speech_detected = None  # callback(t) when a speech segment starts

    def stream(self) -> vad.VADStream:
        return FrameVADStream(self)


class FrameVADStream(vad.VADStream):
    async def _main_task(self) -> None:
        speaking = False
        speech = 0.0
        silence = 0.0
        samples = 0
        send = self._event_ch.send_nowait
        owner: FrameVAD = self._vad  # type: ignore[assignment]
        async for item in self._input_ch:
            if not isinstance(item, rtc.AudioFrame):  # flush: hard segment boundary
                speaking, speech, silence = False, 0.0, 0.0
                continue
            n = item.samples_per_channel
            dur = n / item.sample_rate
            samples += n
            is_speech = item.data[0] != 0
            if is_speech:
                speech += dur
                silence = 0.0
            elif speaking:
                silence += dur
            else:
                speech = 0.0
                silence += dur
            if is_speech and not speaking and owner.on_speech_detected is not None:
                owner.on_speech_detected(time.perf_counter())
            send(
                vad.VADEvent(
                    type=vad.VADEventType.INFERENCE_DONE,
                    samples_index=samples,
                    timestamp=samples / item.sample_rate,
                    speech_duration=speech,
                    silence_duration=silence,
                    probability=1.0 if is_speech else 0.0,
                    speaking=is_speech,
                    raw_accumulated_speech=speech if is_speech else 0.0,
                    raw_accumulated_silence=0.0 if is_speech else silence,
                )
            )
            if is_speech and not speaking:
                speaking = True
                send(
                    vad.VADEvent(
                        type=vad.VADEventType.START_OF_SPEECH,
                        samples_index=samples,
                        timestamp=samples / item.sample_rate,
                        speech_duration=speech,
                        silence_duration=0.0,
                        speaking=True,
                    )
                )
            elif not is_speech and speaking:
                speaking = False
                send(
                    vad.VADEvent(
                        type=vad.VADEventType.END_OF_SPEECH,
                        samples_index=samples,
                        timestamp=samples / item.sample_rate,
                        speech_duration=speech,
                        silence_duration=silence,
                        speaking=False,
                    )
                )
                speech = 0.0


# ---------------------------------------------------------------- STT
class ToldSTT(stt.STT):
    """Streaming STT that emits a final transcript the moment it is told to."""

    def __init__(self) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=False))
        self.stream_obj: ToldRecognizeStream | None = None

    async def _recognize_impl(self, buffer, *, language, conn_options):  # type: ignore[override]
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[stt.SpeechData(text=USER_TEXT, language="en")],
        )

    def stream(
        self,
        *,
        language: object = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> ToldRecognizeStream:
        self.stream_obj = ToldRecognizeStream(stt=self, conn_options=conn_options)
        return self.stream_obj

    def emit_final(self, text: str, *, end_of_speech: bool = False) -> None:
        assert self.stream_obj is not None, "STT stream not started"
        self.stream_obj.emit_final(text, end_of_speech=end_of_speech)


class ToldRecognizeStream(stt.RecognizeStream):
    async def _run(self) -> None:
        async for _ in self._input_ch:  # consume audio; the transcript comes when told
            pass

    def emit_final(self, text: str, *, end_of_speech: bool) -> None:
        self._event_ch.send_nowait(
            stt.SpeechEvent(
                type=stt.SpeechEventType.FINAL_TRANSCRIPT,
                alternatives=[stt.SpeechData(text=text, language="en")],
            )
        )
        if end_of_speech:  # what an STT with its own endpointing sends ("stt" turn mode)
            self._event_ch.send_nowait(stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH))


# ---------------------------------------------------------------- LLM
class TokenLLM(llm.LLM):
    """Streams 20 tokens at once, no delay."""

    def chat(self, *, chat_ctx, tools=None, conn_options=DEFAULT_API_CONNECT_OPTIONS, **_kw):  # type: ignore[override]
        return TokenLLMStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class TokenLLMStream(llm.LLMStream):
    async def _run(self) -> None:
        rid = utils.shortuuid("fake_llm_")
        for tok in LLM_TOKENS:
            self._event_ch.send_nowait(llm.ChatChunk(id=rid, delta=llm.ChoiceDelta(role="assistant", content=tok)))


# ---------------------------------------------------------------- TTS
_tts_pcm = (b"\x01\x00") * int(SAMPLE_RATE * TTS_SECONDS)  # non-zero samples, 16-bit mono


class SentenceTTS(tts.TTS):
    """Non-streaming TTS: LiveKit's tts_node wraps it in tts.StreamAdapter, which
    splits the LLM text into sentences and calls synthesize() once per sentence.
    Each call returns 100 ms of 16-bit audio at once."""

    def __init__(self) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=SAMPLE_RATE,
            num_channels=1,
        )

    def synthesize(self, text: str, *, conn_options=DEFAULT_API_CONNECT_OPTIONS):  # type: ignore[override]
        return SentenceChunkedStream(tts=self, input_text=text, conn_options=conn_options)


class SentenceChunkedStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(
            request_id=utils.shortuuid("fake_tts_"),
            sample_rate=SAMPLE_RATE,
            num_channels=1,
            mime_type="audio/pcm",
        )
        output_emitter.push(_tts_pcm)
        output_emitter.flush()


# ---------------------------------------------------------------- I/O
class QueueAudioInput(io.AudioInput):
    """Async iterator over frames put in a per-session queue (by a test or a shared clock)."""

    def __init__(self) -> None:
        super().__init__(label="bench-input")
        self.queue: asyncio.Queue[rtc.AudioFrame] = asyncio.Queue()

    async def __anext__(self) -> rtc.AudioFrame:
        return await self.queue.get()


class PacedAudioOutput(io.AudioOutput):
    """Plays in real time on a virtual playback clock (like a device/AudioSource would):
    frames may arrive faster than real time; the segment's playout finishes when its
    audio has played; clear_buffer() stops playback at once and reports the real
    playback position. Records timestamps for the scenarios."""

    def __init__(self) -> None:
        super().__init__(
            label="bench-output",
            capabilities=io.AudioOutputCapabilities(pause=False),
            sample_rate=None,
        )
        self._start = 0.0  # perf_counter at the first frame of the segment
        self._pushed = 0.0
        self._finish_handle: asyncio.TimerHandle | None = None
        self.first_frame_t: float | None = None  # first capture_frame of the segment
        self.last_frame_t: float | None = None
        self.clear_t: float | None = None
        self.on_first_frame = None  # callback(t)
        self.segments = 0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        t = time.perf_counter()
        await super().capture_frame(frame)
        self.last_frame_t = t
        if not self._pushed:
            self.first_frame_t = t
            self._start = t
            self.segments += 1
            self.on_playback_started(created_at=time.time())
            if self.on_first_frame is not None:
                self.on_first_frame(t)
        self._pushed += frame.duration

    def played(self) -> float:
        return min(self._pushed, time.perf_counter() - self._start) if self._pushed else 0.0

    def flush(self) -> None:
        super().flush()
        if not self._pushed:
            return

        def _finished() -> None:
            self._finish_handle = None
            pos, self._pushed = self._pushed, 0.0
            self.on_playback_finished(playback_position=pos, interrupted=False)

        if self._finish_handle:
            self._finish_handle.cancel()
        delay = max(0.0, self._pushed - (time.perf_counter() - self._start))
        self._finish_handle = asyncio.get_running_loop().call_later(delay, _finished)

    def clear_buffer(self) -> None:
        if not self._pushed:
            return
        self.clear_t = time.perf_counter()
        if self._finish_handle:
            self._finish_handle.cancel()
            self._finish_handle = None
        pos = self.played()
        self._pushed = 0.0
        self.on_playback_finished(playback_position=pos, interrupted=True)


def make_frame(speech: bool):
    sample = b"\x00\x10" if speech else b"\x00\x00"  # first sample non-zero == speech
    return rtc.AudioFrame(
        data=sample * FRAME_SAMPLES,
        sample_rate=SAMPLE_RATE,
        num_channels=1,
        samples_per_channel=FRAME_SAMPLES,
    )
