"""Run the benchmarks: Vocalis, Pipecat and LiveKit Agents in one invocation.

    python bench/run.py [--quick] [--skip-peers] [--no-offline] [--p6]

Peer environments are created under bench/.venvs/ on first use and reused.
Scenarios are interleaved across frameworks (A B C A B C ...). Prints a
Markdown table and writes bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yardstick  # bench/yardstick.py, beside this script

BENCH = Path(__file__).resolve().parent
DRIVERS = BENCH / "drivers"
VENVS = BENCH / ".venvs"
PEERS = {"pipecat": "pipecat-ai", "livekit": "livekit-agents"}
TARGETS = {
    "p1_median": "≤ 1 ms, ≥ 3× below LiveKit, ≥ 6× below Pipecat",
    "p2_median": "≤ 20 ms",
    "p3_sessions": "≥ 1,000 per core (≥ 2× LiveKit)",
    "p3_rss_per_session": "≤ 100 KB",
    "p4_median": "≤ 700 ms",
    "p5_import": "≤ 150 ms (`import vocalis`)",
}


def python_for(framework: str) -> str:
    """The interpreter that runs a framework's driver (creating its venv once)."""
    if framework == "vocalis":
        return sys.executable
    venv = VENVS / framework
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with {PEERS[framework]} (once) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", PEERS[framework]], check=True)
    return str(python)


def drive(framework: str, *args: str, pin: bool = False, timeout: float = 600) -> dict[str, Any]:
    """Run one driver scenario; its last stdout line is the JSON result."""
    command = [python_for(framework), str(DRIVERS / f"{framework}_driver.py"), *args]
    if pin and shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "VOCALIS_LOG_LEVEL": "ERROR"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=BENCH)
    lines = [line for line in result.stdout.splitlines() if line.strip().startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{framework} {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return json.loads(lines[-1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def latency_rounds(frameworks: list[str], scenario: str, rounds: int, turns: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {fw: [] for fw in frameworks}
    for _ in range(rounds):
        for fw in frameworks:  # interleaved: drift hits every framework alike
            samples[fw] += drive(fw, scenario, "--turns", str(turns))["samples_ms"]
    return samples


def max_sessions(frameworks: list[str], seconds: float, limit: int, start: int) -> dict[str, dict[str, float]]:
    """Largest session count with p99 tick lag under 100 ms, per framework (interleaved)."""
    state = {fw: {"low": 0, "high": None, "n": start, "rss": 0.0, "lag": 0.0} for fw in frameworks}
    for _ in range(12):
        active = [fw for fw in frameworks if state[fw]["n"] is not None]
        if not active:
            break
        for fw in active:
            s = state[fw]
            n = int(s["n"])
            result = drive(fw, "p3", "--sessions", str(n), "--seconds", str(seconds), pin=True, timeout=900)
            ok = result["lag_p99_ms"] < 100.0
            if ok:
                s["low"], s["rss"], s["lag"] = n, result["rss_per_session_kb"], result["lag_p99_ms"]
            else:
                s["high"] = n
            high = s["high"]
            if high is None:
                s["n"] = min(limit, n * 2) if n < limit else None
            else:
                nxt = (int(s["low"]) + int(high)) // 2
                s["n"] = nxt if high - s["low"] > max(10, s["low"] // 10) else None
    return {
        fw: {"sessions": state[fw]["low"], "rss_kb": state[fw]["rss"], "lag_p99_ms": state[fw]["lag"]}
        for fw in frameworks
    }


def metric(unit: str, values: dict[str, float | None]) -> dict[str, Any]:
    """One JSON metric; ratio = peer / Vocalis (for costs: higher is better for Vocalis)."""
    out: dict[str, Any] = {fw: values.get(fw) for fw in ("vocalis", "pipecat", "livekit")}
    mine = values.get("vocalis")
    for peer in ("pipecat", "livekit"):
        theirs = values.get(peer)
        out[f"ratio_{peer}"] = theirs / mine if mine and theirs is not None else None
    out["unit"] = unit
    return out


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (under 3 minutes once the venvs exist)")
    parser.add_argument("--skip-peers", action="store_true", help="Vocalis only")
    parser.add_argument("--no-offline", action="store_true", help="skip P4 (needs the offline plugins)")
    parser.add_argument("--p6", action="store_true", help="then P6, serving sessions per core (bench/p6_serve.py)")
    args = parser.parse_args()
    frameworks = ["vocalis"] if args.skip_peers else ["vocalis", "pipecat", "livekit"]
    rounds, turns = (2, 25) if args.quick else (4, 50)  # P1 needs ≥ 50 turns
    started = time.time()

    imports: dict[str, list[float]] = {fw: [] for fw in frameworks}
    starts: dict[str, list[float]] = {fw: [] for fw in frameworks}
    for index in range(2 if args.quick else 5):
        for fw in frameworks:
            imports[fw].append(drive(fw, "import")["import_s"])
            if index == 0 or not args.quick:
                starts[fw].append(drive(fw, "start")["start_s"])
    bare = []
    for _ in range(3 if args.quick else 5):
        code = "import time; t = time.perf_counter(); import vocalis; print(time.perf_counter() - t)"
        bare.append(
            float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        )

    p1 = latency_rounds(frameworks, "p1", rounds, turns)
    p2 = latency_rounds(frameworks, "p2", rounds, max(4, turns // 5))
    if args.quick:  # short probes, and stop once the target (1,000) is clearly passed
        p3 = max_sessions(frameworks, 1.2, limit=2000, start=200)
    else:
        p3 = max_sessions(frameworks, 5.0, limit=16000, start=100)

    # The machine's speed, in the same run: before and after P4, the slowest part.
    yard = [yardstick.measure()]
    p4: dict[str, Any] | None = None
    if not args.no_offline:
        try:
            command = [sys.executable, str(DRIVERS / "vocalis_offline.py"), "--count", "10" if args.quick else "12"]
            env = {**os.environ, "VOCALIS_LOG_LEVEL": "ERROR"}
            out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=900, env=env)
            p4 = json.loads(out.stdout.strip().splitlines()[-1])
        except Exception as exc:  # the offline plugins may not be installed
            print(f"P4 skipped: {exc}", file=sys.stderr)
    yard.append(yardstick.measure())
    yard_ms = statistics.median(yard)
    p4_ms = statistics.median(p4["samples_ms"]) if p4 and p4["samples_ms"] else None

    med = {fw: statistics.median(v) for fw, v in p1.items()}
    results = {
        "p1_median": metric("ms", med),
        "p1_p90": metric("ms", {fw: percentile(v, 0.9) for fw, v in p1.items()}),
        "p2_median": metric("ms", {fw: statistics.median(v) for fw, v in p2.items()}),
        "p3_sessions": metric("sessions per core", {fw: float(r["sessions"]) for fw, r in p3.items()}),
        "p3_rss_per_session": metric("KB", {fw: r["rss_kb"] for fw, r in p3.items()}),
        "p4_median": metric("ms", {"vocalis": p4_ms}),
        "p4_in_yardsticks": metric("yardsticks", {"vocalis": p4_ms / yard_ms if p4_ms is not None else None}),
        "yardstick": metric("ms", {"vocalis": yard_ms}),
        "p5_import": metric("s", {fw: statistics.median(v) for fw, v in imports.items()}),
        "p5_import_vocalis_bare": metric("s", {"vocalis": statistics.median(bare)}),
        "p5_start": metric("s", {fw: statistics.median(v) for fw, v in starts.items()}),
    }
    # Session counts are a capacity, not a cost: their ratio is Vocalis / peer,
    # so that here too a higher ratio is better for Vocalis.
    sessions = results["p3_sessions"]
    for peer in ("pipecat", "livekit"):
        sessions[f"ratio_{peer}"] = sessions["vocalis"] / sessions[peer] if sessions.get(peer) else None
    meta = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "quick": args.quick,
        "seconds": round(time.time() - started, 1),
        "p4_stages_ms": p4["stages_ms"] if p4 else None,
        "p4_first_turn_ms": p4["samples_ms"][0] if p4 and p4["samples_ms"] else None,
        "yardstick_samples_ms": yard,
        "p3_lag_p99_ms": {fw: r["lag_p99_ms"] for fw, r in p3.items()},
    }
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / "latest.json").write_text(json.dumps({**results, "_meta": meta}, indent=2))

    print(f"\n{meta['machine']}; {meta['when']}; {meta['seconds']} s\n")
    print("| metric | unit | Vocalis | Pipecat | LiveKit | Pipecat / Vocalis | LiveKit / Vocalis | target |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, m in results.items():
        print(
            f"| {name} | {m['unit']} | {fmt(m['vocalis'])} | {fmt(m['pipecat'])} | {fmt(m['livekit'])} | "
            f"{fmt(m['ratio_pipecat'])} | {fmt(m['ratio_livekit'])} | {TARGETS.get(name, '')} |"
        )
    if p4:
        print(f"\nP4 stages (median ms): {p4['stages_ms']}; first turn {meta['p4_first_turn_ms']} ms")
    print(f"Yardstick (bench/yardstick.py, before and after P4): {yard} ms")
    if args.p6:  # Vocalis only, in its own processes; it writes bench/results/p6.json
        print("\nP6: sessions per core through `vocalis serve` (about 6 minutes) ...", flush=True)
        subprocess.run([sys.executable, str(BENCH / "p6_serve.py")], check=True, timeout=3600)


if __name__ == "__main__":
    main()
