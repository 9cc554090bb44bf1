"""Score labelled turn sets with Smart Turn and print accuracy, AUC and latency.

Run from the repository root::

    .venv/bin/python plugins/smartturn/scripts/evaluate.py [MANIFEST ...]

Defaults to ``tests/data/turns/manifest.json`` and
``tests/plugins/smartturn/data/manifest.json``. Each set is scored with the
default ``trailing_silence`` (0.2 s) and with the audio as given.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import wave
from pathlib import Path

import numpy as np

from vocalis.audio import AudioFrame
from vocalis.chat import ChatContext
from vocalis_smartturn import SmartTurnEOU

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_SETS = [ROOT / "tests/data/turns/manifest.json", ROOT / "tests/plugins/smartturn/data/manifest.json"]


def read(path: Path) -> AudioFrame:
    with wave.open(str(path)) as wav:
        return AudioFrame(wav.readframes(wav.getnframes()), wav.getframerate(), wav.getnchannels())


async def evaluate(manifest: Path, trailing: float | None) -> None:
    eou = SmartTurnEOU(trailing_silence=trailing)
    await eou.prewarm()
    items = json.loads(manifest.read_text())  # noqa: ASYNC240
    scored: list[tuple[bool, float]] = []
    latencies = []
    for item in items:
        audio = read(manifest.parent / item["file"])
        started = time.perf_counter()
        probability = await eou.predict(ChatContext(), audio=audio)
        latencies.append(time.perf_counter() - started)
        scored.append((bool(item["complete"]), probability))
    complete = [p for label, p in scored if label]
    cut = [p for label, p in scored if not label]
    accuracy = np.mean([(p >= 0.5) == label for label, p in scored])
    auc = np.mean([a > b for a in complete for b in cut]) if complete and cut else float("nan")
    print(
        f"{manifest.parent.name:6s} trailing_silence={trailing}: n={len(scored)} accuracy@0.5 {accuracy:.2f} "
        f"AUC {auc:.2f} mean P complete {np.mean(complete) if complete else float('nan'):.3f} "
        f"cut-off {np.mean(cut) if cut else float('nan'):.3f}; "
        f"latency median {np.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )


async def main(paths: list[Path]) -> None:
    for path in paths:
        if path.is_file():
            for trailing in (0.2, None):
                await evaluate(path, trailing)


if __name__ == "__main__":
    asyncio.run(main([Path(p) for p in sys.argv[1:]] or DEFAULT_SETS))
