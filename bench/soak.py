"""The full soak: 10,000 scripted turns in one process, then look for leaks.

    python bench/soak.py [--turns 10000] [--warmup 1000] [--json bench/results/soak.json] [--trace]

Runs :func:`vocalis.testing.soak.run_soak` (the fakes under virtual time:
sessions that open, talk, call tools, fail, get interrupted and close, over
and over) and prints RSS growth after the warm-up, leaked asyncio tasks,
threads, file descriptors and sessions. Exits 1 if a figure is over budget
(RSS growth under 5 MB, zero leaks). ``--trace`` adds the biggest
allocation growths (tracemalloc; slower, and RSS then includes its own
bookkeeping). The short version runs in CI: tests/core/test_soak.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from vocalis.testing.soak import run_soak

BENCH = Path(__file__).resolve().parent
BUDGET_KB = 5 * 1024


def machine() -> dict[str, Any]:
    """Where the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=10_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--json", type=Path, default=BENCH / "results" / "soak.json")
    parser.add_argument("--trace", action="store_true", help="diff tracemalloc snapshots (slow)")
    parser.add_argument("--budget-kb", type=int, default=BUDGET_KB)
    args = parser.parse_args()

    started = time.perf_counter()

    def progress(turns: int, rss_kb: int) -> None:
        print(f"  {turns:>6} turns  RSS {rss_kb / 1024:7.1f} MB  {time.perf_counter() - started:6.1f} s", flush=True)

    print(f"soak: {args.turns} turns, warm-up {args.warmup}", flush=True)
    result = run_soak(args.turns, warmup=args.warmup, trace_memory=args.trace, progress=progress)
    problems = result.problems(max_rss_growth_kb=args.budget_kb)
    report = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": machine(),
        **result.to_dict(),
        "budget_kb": args.budget_kb,
        "problems": problems,
    }
    rows = [
        ("turns (sessions)", f"{result.turns} ({result.sessions})"),
        ("wall time", f"{result.wall_seconds:.1f} s ({result.wall_seconds / result.turns * 1000:.2f} ms/turn)"),
        ("conversation time (virtual)", f"{result.virtual_seconds / 3600:.1f} h"),
        (
            "RSS start / after warm-up / end",
            f"{result.rss_start_kb / 1024:.1f} / {result.rss_baseline_kb / 1024:.1f} / {result.rss_end_kb / 1024:.1f} MB",  # noqa: E501
        ),
        ("RSS growth after warm-up", f"{result.rss_growth_kb} KB (budget {args.budget_kb} KB)"),
        (
            "leaked tasks / threads / fds / sessions",
            f"{result.tasks_leaked} / {result.threads_leaked} / {result.fds_leaked} / {result.sessions_leaked}",
        ),
        (
            "agent turns, tool calls, interruptions, errors",
            f"{result.agent_turns}, {result.tool_calls}, {result.interruptions}, {result.errors}",
        ),
    ]
    if result.python_heap_growth_kb is not None:
        rows.append(("Python heap growth (tracemalloc)", f"{result.python_heap_growth_kb} KB"))
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    for line in result.top_allocations:
        print("  ", line)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.json}")
    if problems:
        print("OVER BUDGET:\n  " + "\n  ".join(problems))
        return 1
    print("within budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
