"""Measure the llamacpp provider: load, first token, speed, stop latency, concurrency.

Usage: python plugins/llamacpp/scripts/bench_llamacpp.py [--threads N] [--parallel N]
       [--model PATH] [--runs N] [--hog]

``--hog`` keeps one core busy with a spinning process meanwhile, as Whisper or
Piper would in a live session.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time

from vocalis.chat import ChatContext
from vocalis_llamacpp import LlamaCppLLM

LONG = "Count from one to fifty in words."
QUESTIONS = [
    "What is 2 plus 2?",
    "Say hello.",
    "Name three colours.",
    "What is the capital of France?",
]


def _spin() -> None:
    while True:
        pass


def _context(question: str) -> ChatContext:
    ctx = ChatContext()
    ctx.add_message("system", "You are a friendly voice assistant. Keep answers short.")
    ctx.add_message("user", question)
    return ctx


async def _one(llm: LlamaCppLLM, question: str) -> tuple[float, float, int]:
    started = time.perf_counter()
    first = None
    usage = None
    async for chunk in llm.chat(_context(question)):
        if first is None and chunk.text:
            first = time.perf_counter() - started
        usage = chunk.usage or usage
    total = time.perf_counter() - started
    return first or total, total, usage.completion_tokens if usage else 0


async def main(args: argparse.Namespace) -> None:
    options = {"n_threads": args.threads, "parallel": args.parallel, "seed": 1}
    if args.model:
        options["model"] = args.model
    llm = LlamaCppLLM(**options)
    started = time.perf_counter()
    await llm.prewarm()
    seconds = time.perf_counter() - started
    print(f"load: {seconds:.2f} s (threads={args.threads}, slots={args.parallel})")

    ttfts, rates = [], []
    for i in range(args.runs):
        ttft, total, tokens = await _one(llm, QUESTIONS[i % len(QUESTIONS)])
        ttfts.append(ttft)
        rates.append(tokens / max(total - ttft, 1e-9))
    median, worst = statistics.median(ttfts) * 1000, max(ttfts) * 1000
    print(f"first token: median {median:.0f} ms, max {worst:.0f} ms")
    print(f"generation: median {statistics.median(rates):.0f} tokens/s")

    stops = []
    for _ in range(args.runs):
        stream = llm.chat(_context(LONG))
        async for _chunk in stream:
            break
        started = time.perf_counter()
        await stream.aclose()
        stops.append(time.perf_counter() - started)
    median, worst = statistics.median(stops) * 1000, max(stops) * 1000
    print(f"stop (aclose mid-stream): median {median:.1f} ms, max {worst:.1f} ms")

    # Two long replies at once, both cut at 128 tokens: same work for each.
    capped = LlamaCppLLM(**{**options, "max_tokens": 128})
    started = time.perf_counter()
    results = await asyncio.gather(*(_one(capped, LONG) for _ in range(2)))
    wall = time.perf_counter() - started
    print(
        f"2 concurrent chats: wall {wall:.2f} s, first tokens "
        + ", ".join(f"{r[0] * 1000:.0f} ms" for r in results)
        + ", tokens "
        + ", ".join(str(r[2]) for r in results)
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--model", default=None)
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--hog", action="store_true")
    arguments = parser.parse_args()
    hog = multiprocessing.Process(target=_spin, daemon=True) if arguments.hog else None
    if hog:
        hog.start()
    try:
        asyncio.run(main(arguments))
    finally:
        if hog:
            hog.terminate()
            hog.join()
