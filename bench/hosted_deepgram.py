"""Time to final transcript (DeepgramSTT) and to first audio (DeepgramTTS) against the local protocol servers.

    python bench/hosted_deepgram.py [--delay 0.15] [--turns 10]

The servers (tests/plugins/deepgram/) wait ``--delay`` seconds before every
final result and every first byte of audio, as the real service takes time
to answer. Printed: the median and the 90th percentile over ``--turns``.

Speech to text (a recorded sentence, tests/data/speech/utt01.wav, cut after its last word):

- ``live, after Finalize``: one live stream per session; per turn, the
  sentence is pushed, then ``flush()`` (the VAD's end of speech sends
  ``Finalize``); timed from the flush to the final transcript;
- ``live, by endpointing``: the sentence, then silence at the pace of a
  microphone; timed from the last speech frame to the final (includes the
  300 ms of silence endpointing waits for);
- ``recognize (HTTP)``: the whole sentence posted to the pre-recorded
  endpoint; timed from the call to the transcript.

Text to speech (one sentence):

- ``stream, new connection``: a new provider per turn (the WebSocket handshake is paid);
- ``stream, kept connection``: the same provider, its WebSocket kept between replies;
- ``synthesize (HTTP)``: ``POST /v1/speak`` on a pooled HTTP connection.

Timed from the text handed to the provider to its first frame. What is above
``--delay`` is the client's own cost plus localhost round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "plugins" / "deepgram"))

from deepgram_listen_server import ListenServer
from deepgram_server_base import API_KEY
from deepgram_speak_server import SpeakServer

from vocalis.audio import AudioFrame
from vocalis.providers.stt import SpeechEventType, STTStream
from vocalis_deepgram import DeepgramSTT, DeepgramTTS

SENTENCE = "Hello there, this is the first sentence of the reply."
SILENCE = AudioFrame(bytes(640), 16_000)


def clip() -> tuple[list[AudioFrame], str]:
    item = json.loads((ROOT / "tests" / "data" / "speech" / "manifest.json").read_text())[0]
    with wave.open(str(ROOT / "tests" / "data" / "speech" / item["file"])) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    loud = np.flatnonzero(np.abs(samples) > 500)
    samples = samples[: loud[-1] + 1]  # up to the last word: the end of speech is the end of the clip
    return [AudioFrame(samples[i : i + 320].tobytes(), 16_000) for i in range(0, len(samples), 320)], item["text"]


async def next_final(stream: STTStream) -> None:
    async for event in stream:
        if event.type is SpeechEventType.FINAL_TRANSCRIPT and event.text:
            return


async def live_turns(stt: DeepgramSTT, frames: list[AudioFrame], turns: int, *, finalize: bool) -> list[float]:
    stream = stt.stream()
    took: list[float] = []
    for _ in range(turns):
        for frame in frames:
            stream.push_frame(frame)
        await asyncio.sleep(0)
        final = asyncio.ensure_future(next_final(stream))
        started = time.perf_counter()
        if finalize:
            stream.flush()
        else:
            while not final.done():  # a microphone: 20 ms of silence every 20 ms
                stream.push_frame(SILENCE)
                await asyncio.wait([final], timeout=0.02)
        await final
        took.append(time.perf_counter() - started)
        for _ in range(60):  # the pause between turns (lets the utterance end)
            stream.push_frame(SILENCE)
        await asyncio.sleep(0.05)
    stream.end_input()
    await stream.aclose()
    return took


async def timed(turns: int, one: Callable[[], Awaitable[object]]) -> list[float]:
    took = []
    for _ in range(turns):
        started = time.perf_counter()
        await one()
        took.append(time.perf_counter() - started)
    return took


async def first_frame(tts: DeepgramTTS, *, stream: bool) -> float:
    """Seconds from the text handed over to the first frame (the rest is read, untimed)."""
    started = time.perf_counter()
    if stream:
        synthesis = tts.stream()
        synthesis.push_text(SENTENCE)
        synthesis.end_input()
        await anext(synthesis)
        took = time.perf_counter() - started
        async for _ in synthesis:  # the reply completes, so its connection is kept
            pass
        await synthesis.aclose()
        return took
    frames = tts.synthesize(SENTENCE)
    await anext(frames)
    took = time.perf_counter() - started
    await frames.aclose()
    return took


async def first_frames(tts_for: Callable[[], DeepgramTTS], turns: int, *, stream: bool) -> list[float]:
    took = []
    for _ in range(turns):
        tts = tts_for()
        took.append(await first_frame(tts, stream=stream))
    return took


def report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    print(f"  {name:<28} median {statistics.median(ordered) * 1000:6.0f} ms   p90 {p90 * 1000:6.0f} ms")


async def bench(listen: ListenServer, speak: SpeakServer, turns: int) -> None:
    frames, text = clip()
    listen.behaviour.default = text
    stt = DeepgramSTT(_env_file=None, api_key=API_KEY, base_url=listen.url)
    print("speech to text: time to final transcript")
    report("live, after Finalize", await live_turns(stt, frames, turns, finalize=True))
    report("live, by endpointing", await live_turns(stt, frames, turns, finalize=False))
    await stt.recognize(frames)  # warm the HTTP connection
    report("recognize (HTTP)", await timed(turns, lambda: stt.recognize(frames)))  # type: ignore[arg-type,return-value]
    await stt.aclose()

    print("text to speech: time to first audio")
    made: list[DeepgramTTS] = []

    def new_tts() -> DeepgramTTS:
        made.append(DeepgramTTS(_env_file=None, api_key=API_KEY, base_url=speak.url))
        return made[-1]

    report("stream, new connection", await first_frames(new_tts, turns, stream=True))
    kept = new_tts()
    await first_frame(kept, stream=True)
    report("stream, kept connection", await first_frames(lambda: kept, turns, stream=True))
    await first_frame(kept, stream=False)
    report("synthesize (HTTP)", await first_frames(lambda: kept, turns, stream=False))
    for tts in made:
        await tts.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=0.15, help="server delay before finals and first audio (s)")
    parser.add_argument("--turns", type=int, default=10)
    args = parser.parse_args()
    with ListenServer() as listen, SpeakServer() as speak:
        listen.behaviour.final_delay = args.delay
        speak.behaviour.first_byte_delay = args.delay
        print(f"server delay {args.delay * 1000:.0f} ms, {args.turns} turns each")
        asyncio.run(bench(listen, speak, args.turns))


if __name__ == "__main__":
    main()
