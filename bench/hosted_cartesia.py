"""Time to first audio of CartesiaTTS against the local protocol server.

    python bench/hosted_cartesia.py [--delay 0.15] [--turns 20]

The server (tests/plugins/cartesia/cartesia_server.py) waits ``--delay``
seconds before the first chunk of each context or HTTP reply, as a real
service takes time to its first byte. For each path it prints the median
(and the 90th percentile) of the time from the first sentence being handed
to the provider to its first audio frame, over ``--turns`` turns:

- ``stream, first turn``: a new provider, so the WebSocket handshake is paid
  (one sample per fresh provider);
- ``stream, later turns``: the WebSocket reused, one new context per turn;
- ``synthesize (HTTP)``: ``POST /tts/bytes`` on a pooled HTTP connection.

What is above ``--delay`` is the client's own cost plus localhost round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "plugins" / "cartesia"))

from cartesia_server import API_KEY, CartesiaServer

from vocalis_cartesia import CartesiaTTS

SENTENCE = "Hello there, this is the first sentence of the reply. "


async def stream_turn(tts: CartesiaTTS) -> float:
    stream = tts.stream()
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


async def http_turn(tts: CartesiaTTS) -> float:
    started = time.perf_counter()
    frames = tts.synthesize(SENTENCE)
    await anext(frames)
    took = time.perf_counter() - started
    async for _ in frames:
        pass
    return took


def row(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    return f"{name:<24} median {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms   (n={len(ms)})"


async def main(delay: float, turns: int) -> None:
    async with CartesiaServer(first_chunk_delay=delay) as server:

        def make() -> CartesiaTTS:
            return CartesiaTTS(api_key=API_KEY, base_url=server.url, _env_file=None)

        cold: list[float] = []
        for _ in range(turns):
            tts = make()
            cold.append(await stream_turn(tts))
            await tts.aclose()
        tts = make()
        await tts.prewarm()
        warm = [await stream_turn(tts) for _ in range(turns)]
        await http_turn(tts)  # opens the pooled HTTP connection
        http = [await http_turn(tts) for _ in range(turns)]
        await tts.aclose()
        assert server.violations == [], server.violations
    print(f"server first-chunk delay: {delay * 1000:.0f} ms")
    print(row("stream, first turn", cold))
    print(row("stream, later turns", warm))
    print(row("synthesize (HTTP)", http))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--delay", type=float, default=0.15, help="server time to first chunk, seconds")
    parser.add_argument("--turns", type=int, default=20, help="turns measured per path")
    args = parser.parse_args()
    asyncio.run(main(args.delay, args.turns))
