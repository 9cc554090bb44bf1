"""Time to first token (GeminiLLM) and to first audio (GeminiLive) against the local protocol servers.

    python bench/hosted_google.py [--delay 0.15] [--turns 20]

The servers (tests/plugins/google/gemini_rest_server.py and
gemini_live_server.py) wait ``--delay`` seconds before the first byte of
each reply, as the real service takes time to think. For each path it prints
the median (and the 90th percentile) over ``--turns`` turns:

- ``llm, first reply``: a new provider, so the TCP connection is opened
  (one sample per fresh provider);
- ``llm, later replies``: ``streamGenerateContent`` on the pooled connection,
  from ``chat()`` to the first text chunk;
- ``live, connect``: WebSocket handshake, ``setup`` to ``setupComplete``;
- ``live, first audio``: from ``create_response`` to the first audio frame
  on an open session (what a turn waits once the user has stopped).

What is above ``--delay`` is the client's own cost plus localhost round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "plugins" / "google"))

from gemini_live_server import API_KEY as LIVE_KEY
from gemini_live_server import LiveServer, LiveTurn
from gemini_rest_server import API_KEY as REST_KEY
from gemini_rest_server import RestServer

from vocalis.chat import ChatContext, ChatRole
from vocalis.providers.realtime import RealtimeEventType
from vocalis_google import GeminiLive, GeminiLLM


def context() -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(ChatRole.SYSTEM, "Be brief.")
    ctx.add_message(ChatRole.USER, "Hello there?")
    return ctx


async def llm_turn(llm: GeminiLLM) -> float:
    started = time.perf_counter()
    stream = llm.chat(context())
    async for chunk in stream:
        if chunk.text:
            took = time.perf_counter() - started
            break
    async for _ in stream:
        pass
    return took


async def bench_llm(delay: float, turns: int) -> tuple[list[float], list[float]]:
    first: list[float] = []
    later: list[float] = []
    with RestServer(first_byte_delay=delay) as server:
        for _ in range(max(3, turns // 4)):
            llm = GeminiLLM(api_key=REST_KEY, base_url=server.url, _env_file=None)
            first.append(await llm_turn(llm))
            await llm.aclose()
        llm = GeminiLLM(api_key=REST_KEY, base_url=server.url, _env_file=None)
        await llm_turn(llm)
        for _ in range(turns):
            later.append(await llm_turn(llm))
        await llm.aclose()
    return first, later


async def bench_live(delay: float, turns: int) -> tuple[list[float], list[float]]:
    connects: list[float] = []
    audio: list[float] = []
    script = [LiveTurn(reply="Sure, here is the answer.") for _ in range(turns)]
    async with LiveServer(script, first_audio_delay=delay) as server:
        model = GeminiLive(api_key=LIVE_KEY, base_url=server.url, _env_file=None)
        await model.prewarm()
        for _ in range(max(3, turns // 4)):
            started = time.perf_counter()
            rt = await model.connect(instructions="Be brief.")
            connects.append(time.perf_counter() - started)
            await rt.aclose()
        rt = await model.connect(instructions="Be brief.")
        for _ in range(turns):
            started = time.perf_counter()
            first: float | None = None
            await rt.create_response("Answer.")
            async for event in rt:
                if event.type is RealtimeEventType.AUDIO and first is None:
                    first = time.perf_counter() - started
                if event.type is RealtimeEventType.RESPONSE_DONE:
                    break
            assert first is not None, "an answer without audio"
            audio.append(first)
        await rt.aclose()
        await model.aclose()
    return connects, audio


def show(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    median = statistics.median(samples)
    print(f"{name:24s} median {median * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms   (n={len(samples)})")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.15, help="server-side first-byte delay, seconds")
    parser.add_argument("--turns", type=int, default=20)
    args = parser.parse_args()
    print(f"server first-byte delay: {args.delay * 1000:.0f} ms")
    first, later = await bench_llm(args.delay, args.turns)
    show("llm, first reply", first)
    show("llm, later replies", later)
    connects, audio = await bench_live(args.delay, args.turns)
    show("live, connect", connects)
    show("live, first audio", audio)


if __name__ == "__main__":
    asyncio.run(main())
