"""Measure Silero VAD costs: model load, per-window inference, per-frame push.

Run: ``python plugins/silero/scripts/bench.py`` (prints one line per backend).
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from vocalis.audio import AudioFrame
from vocalis_silero import SileroVAD, models


async def bench(backend: str, seconds: float = 30.0) -> None:
    started = time.perf_counter()
    model = models.load(backend)  # type: ignore[arg-type]
    load = time.perf_counter() - started
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 16_000)) / 16_000
    # Speech-like test signal: a modulated harmonic tone with a little noise.
    audio = 0.2 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.005 * rng.standard_normal(len(t))
    pcm = (audio * 32767).astype(np.int16)
    windows = (pcm[: len(pcm) // 512 * 512].reshape(-1, 512).astype(np.float32)) / 32768
    state = model.new_state()
    model.score(state, windows[:1])
    cpu, wall = time.process_time(), time.perf_counter()
    for window in windows:
        model.score(state, window[None])
    per_window = (time.perf_counter() - wall) / len(windows) * 1e6
    cpu_window = (time.process_time() - cpu) / len(windows) * 1e6
    vad = SileroVAD(backend=backend)
    stream = vad.stream()
    frames = [AudioFrame(pcm[i : i + 320].tobytes(), 16_000) for i in range(0, len(pcm), 320)]
    wall = time.perf_counter()
    costs = []
    for frame in frames:
        t0 = time.perf_counter()
        stream.push_frame(frame)
        costs.append(time.perf_counter() - t0)
        if not model.inline:
            await asyncio.sleep(0)
    stream.end_input()
    async for _ in stream:
        pass
    total = time.perf_counter() - wall
    await stream.aclose()
    costs_us = np.array(costs) * 1e6
    print(
        f"{backend:5s} {getattr(model, 'flavour', '')}: load {load * 1000:.1f} ms, "
        f"{per_window:.0f} us/window wall ({cpu_window:.0f} us CPU), "
        f"push of 20 ms frame on the loop: mean {costs_us.mean():.0f} us, p99 {np.percentile(costs_us, 99):.0f} us, "
        f"RTF {total / seconds:.4f}"
    )


async def main() -> None:
    for backend in ("onnx", "ggml"):
        await bench(backend)


if __name__ == "__main__":
    asyncio.run(main())
