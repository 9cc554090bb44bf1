"""Time to first audio of ElevenLabsTTS against the local protocol server.

    python bench/hosted_elevenlabs.py [--delay 0.15] [--turns 20]

The server (tests/plugins/elevenlabs/elevenlabs_server.py) waits ``--delay``
seconds before the first audio of each generation (socket) or HTTP reply,
as the real service takes time to its first byte. For each path it prints
the median (and the 90th percentile) over ``--turns`` turns of the time from
the first sentence being handed to the provider to its first audio frame:

- ``stream, text at once``: the stream is opened and the sentence pushed at
  the same moment, so the WebSocket handshake is paid (the input-streaming
  API takes one socket per utterance);
- ``stream, text after 200 ms``: the stream is opened when the LLM starts
  and the sentence arrives 200 ms later, as in a session: the handshake is
  done by then;
- ``synthesize (HTTP)``: ``POST .../stream`` on a pooled HTTP connection;
- ``stream over HTTP``: ``transport="http"``, a request per sentence.

What is above ``--delay`` is the client's own cost plus localhost round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "plugins" / "elevenlabs"))

from elevenlabs_server import API_KEY, VOICE, ElevenLabsServer

from vocalis_elevenlabs import ElevenLabsTTS

SENTENCE = "Hello there, this is the first sentence of the reply. "


async def stream_turn(tts: ElevenLabsTTS, llm_head_start: float) -> float:
    stream = tts.stream()
    if llm_head_start:
        await asyncio.sleep(llm_head_start)
    started = time.perf_counter()
    stream.push_text(SENTENCE)
    stream.flush()
    await anext(stream)
    took = time.perf_counter() - started
    stream.end_input()
    async for _ in stream:
        pass
    await stream.aclose()
    return took


async def http_turn(tts: ElevenLabsTTS) -> float:
    started = time.perf_counter()
    frames = tts.synthesize(SENTENCE)
    await anext(frames)
    took = time.perf_counter() - started
    async for _ in frames:
        pass
    return took


def report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    median = 1000 * statistics.median(samples)
    print(f"{name:<28} median {median:6.1f} ms   p90 {1000 * p90:6.1f} ms   (n={len(samples)})")


async def main(delay: float, turns: int) -> None:
    with ElevenLabsServer() as server:
        server.behaviour.first_audio_delay = delay
        server.behaviour.http_first_byte_delay = delay
        options = {"api_key": API_KEY, "base_url": server.url, "voice_id": VOICE, "_env_file": None}
        socket_tts = ElevenLabsTTS(**options)
        http_tts = ElevenLabsTTS(transport="http", **options)
        await http_turn(socket_tts)  # warm the HTTP pool and the imports
        print(f"server first-byte delay: {1000 * delay:.0f} ms")
        report("stream, text at once", [await stream_turn(socket_tts, 0.0) for _ in range(turns)])
        report("stream, text after 200 ms", [await stream_turn(socket_tts, 0.2) for _ in range(turns)])
        report("synthesize (HTTP)", [await http_turn(socket_tts) for _ in range(turns)])
        report("stream over HTTP", [await stream_turn(http_tts, 0.0) for _ in range(turns)])
        await socket_tts.aclose()
        await http_tts.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=0.15, help="server first-byte delay in seconds")
    parser.add_argument("--turns", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.delay, args.turns))
