"""A machine-speed yardstick, measured in the same run as the benchmarks.

Absolute latencies differ about twofold between VMs of the same nominal
size. The yardstick is a fixed piece of CPU work of the kinds the offline
stack does — single-threaded float32 matrix products (the models' inner
loops) and plain Python (the framework's) — timed in a fresh process with
one thread, so a P4 figure divided by it can be compared across machines.

Run alone: ``python bench/yardstick.py`` prints ``{"yardstick_ms": ...}``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

_ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def _work() -> float:
    """Milliseconds for the fixed workload (best of five)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 256), dtype=np.float32)
    b = rng.standard_normal((256, 256), dtype=np.float32)
    times = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(40):
            a = np.tanh(a @ b * 0.05)
        total = 0
        for i in range(200_000):
            total += i * i % 7
        times.append((time.perf_counter() - started) * 1000)
    return min(times)


def measure(repeats: int = 3) -> float:
    """The yardstick in milliseconds: the median of ``repeats`` fresh processes."""
    env = {**os.environ, **_ONE_THREAD}
    samples = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, __file__, "--once"], capture_output=True, text=True, check=True, env=env, timeout=120
        )
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


if __name__ == "__main__":
    if "--once" in sys.argv:
        print(_work())
    else:
        print(json.dumps({"yardstick_ms": round(measure(), 2)}))
