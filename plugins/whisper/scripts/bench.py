"""Measure the Whisper STT: load time, latency, real-time factor and WER.

Usage (from the repository root)::

    .venv/bin/python plugins/whisper/scripts/bench.py [--threads 1] [--manifest PATH]

WER counts words after lower-casing, dropping punctuation and spelling out
numbers ("15" -> "fifteen"), since Whisper writes digits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time
import wave
from pathlib import Path

from vocalis.audio import AudioFrame
from vocalis_whisper import WhisperSTT

ROOT = Path(__file__).resolve().parents[3]
ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def spell(n: int) -> str:
    """English words for 0..999."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    return ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + spell(n % 100))


def words(text: str) -> list[str]:
    """Normalised words of a transcript."""
    text = re.sub(r"\d{1,3}", lambda m: f" {spell(int(m.group()))} ", text.lower().replace("+", " plus "))
    return re.sub(r"[^\w\s']", " ", text).split()


def distance(ref: list[str], hyp: list[str]) -> int:
    """Word-level edit distance."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1]


def load(path: Path) -> list[AudioFrame]:
    """A WAV file as 20 ms frames."""
    with wave.open(str(path)) as wav:
        rate, data = wav.getframerate(), wav.readframes(wav.getnframes())
    step = 2 * rate // 50
    return [AudioFrame(data[i : i + step], rate) for i in range(0, len(data), step)]


async def main(threads: int, manifest_path: Path) -> None:
    """Run the measurements and print them."""
    items = json.loads(manifest_path.read_text())  # noqa: ASYNC240
    clips = [(load(manifest_path.parent / item["file"]), item["text"]) for item in items]
    stt = WhisperSTT(cpu_threads=threads)
    started = time.perf_counter()
    await stt.prewarm()
    print(f"load: {time.perf_counter() - started:.2f} s (threads={threads})")
    await stt.recognize(clips[0][0])  # first decode allocates buffers

    for label, method in (
        ("final (beam)", stt.recognize),
        ("interim (greedy)", stt.recognize_interim),
    ):
        latencies, errors, total = [], 0, 0
        for frames, text in clips:
            started = time.perf_counter()
            event = await method(frames)
            latencies.append(time.perf_counter() - started)
            errors += distance(words(text), words(event.text))
            total += len(words(text))
        seconds = sum(f.duration for frames, _ in clips for f in frames)
        print(
            f"{label}: WER {errors / total:.1%} over {len(clips)} utterances; latency median "
            f"{statistics.median(latencies):.3f} s, max {max(latencies):.3f} s; "
            f"RTF {sum(latencies) / seconds:.3f}"
        )

    long_audio = [frame for frames, _ in clips for frame in frames]
    seconds = sum(f.duration for f in long_audio)
    started = time.perf_counter()
    event = await stt.recognize(long_audio)
    elapsed = time.perf_counter() - started
    reference = " ".join(text for _, text in clips)
    wer = distance(words(reference), words(event.text)) / len(words(reference))
    print(f"long audio: {seconds:.1f} s in {elapsed:.2f} s (RTF {elapsed / seconds:.3f}), WER {wer:.1%}")

    for label, frames in (("silence", [AudioFrame.silence(2.0)]),):
        started = time.perf_counter()
        event = await stt.recognize(frames)
        print(f"{label}: {event.text!r} in {time.perf_counter() - started:.3f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--manifest", type=Path, default=ROOT / "tests/data/speech/manifest.json")
    args = parser.parse_args()
    asyncio.run(main(args.threads, args.manifest))
