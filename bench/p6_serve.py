"""P6: real-time WebSocket sessions per core through ``vocalis serve``, on the fakes.

    python bench/p6_serve.py [--workers 1,2] [--seconds 10] [--watch N [--cprofile]] [--experiment E]

Starts ``python -m vocalis.testing.serve_fakes`` (the real serving stack:
HTTP edge, admission, metrics, workers; fake VAD/STT/LLM/TTS instead of
models) with 1 and then 2 workers, and searches for the largest number of
``/ws`` sessions it holds at real time. Each session streams 20 ms frames
of 16 kHz PCM in real time: 1 s of tone (speech to the fake VAD), then 3 s
of silence, over and over; sessions are spread evenly over the 4 s cycle.
A step passes when the reply latency (end of the speech burst to the first
binary agent audio frame; a reply missing after 3 s counts as infinite) has
p99 <= 1 s and every worker's ``vocalis_loop_lag_seconds`` (scraped each
second from ``/metrics``) has p99 <= 100 ms.

The load comes from separate generator processes (``bench/p6_client.py``),
each with one asyncio loop and one 20 ms clock for all its sessions, and
pre-built WebSocket frames (a frame costs the client one ``write``). The
workers' figures come from ``/metrics`` and ``/proc`` (``bench/p6_workers.py``).
Steps wait for other programs to leave the machine's cores (``--max-others``)
and a failed step during which they took more is run again once. With 1
worker on a machine of 2+ cores the worker is pinned to core 0 and the
generators to the others; otherwise they share the machine and the report
gives the generators' CPU too.

Writes ``bench/results/p6.json`` with every step, the worker CPU and RSS
per session, and the yardstick (``bench/yardstick.py``) measured in the
same run. ``--watch N`` instead runs one step of one worker with N sessions
and reports its garbage collections and event-loop stalls (and, with
``--cprofile``, where its CPU goes). ``--experiment`` changes the workers
(``gc-freeze``, ``uvloop``) to measure what a fix would gain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from p6_client import TOKEN_ENV, pct  # bench/, beside this script
from p6_workers import EXPERIMENTS, Server, machine_cpu

BENCH = Path(__file__).resolve().parent


async def run_step(server: Server, n: int, args: argparse.Namespace, watch: bool = False) -> dict[str, Any]:
    """``n`` sessions spread over the generators; the step's figures and verdict."""
    import signal

    gens = max(1, min(args.generators, n))
    shares = [n // gens + (i < n % gens) for i in range(gens)]
    env = {**os.environ, TOKEN_ENV: server.token}
    procs = []
    for i, share in enumerate(shares):
        command = [sys.executable, str(BENCH / "p6_client.py"), "--port", str(server.port)]
        command += ["--sessions", str(share), "--offset", str(sum(shares[:i])), "--total", str(n)]
        command += ["--settle", str(args.settle), "--seconds", str(args.seconds), "--cpus", server.generator_cpus()]
        procs.append(await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE, env=env))

    async def read(proc: asyncio.subprocess.Process) -> dict[str, Any]:
        assert proc.stdout is not None
        last = ""
        async for raw in proc.stdout:
            last = raw.decode().strip()
            if watch and last in ("measuring", "measured"):
                os.kill(server.pids[0], signal.SIGUSR1 if last == "measuring" else signal.SIGUSR2)
        if await proc.wait() != 0:
            raise RuntimeError("a generator failed")
        return dict(json.loads(last))

    results = await asyncio.gather(*(read(p) for p in procs))
    w0, w1 = max(r["window"][0] for r in results), min(r["window"][1] for r in results)
    await asyncio.sleep(1.2)  # a scrape after the window's end
    workers = [server.scraper.window(pid, w0, w1 + 1.0) for pid in server.pids]
    busy, stolen = server.scraper.busy(w0, w1 + 1.0)
    client = round(sum(r["cpu_s"] for r in results) / args.seconds, 3)
    latencies = sorted(x for r in results for x in r["latencies"])
    missed = sum(r["missed"] for r in results)
    timed = latencies + [math.inf] * missed
    p99 = pct(timed, 0.99)
    step = {
        "sessions": n,
        "connected": sum(r["sessions"] for r in results),
        "failed": sum(r["failed"] for r in results),
        "dropped": sum(r["dropped"] for r in results),
        "ramp_s": max(r["ramp_s"] for r in results),
        "bursts": sum(r["bursts"] for r in results),
        "replies": len(latencies),
        "missed": missed,
        "late": sum(x > args.target_p99 for x in latencies),
        "reply_ms": {q: round(1000 * pct(timed, p), 1) for q, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))},
        "workers": workers,
        "client_cpu_cores": client,
        "machine_busy_cores": busy,
        # What the machine did besides the workers and the generators: other programs, this parent.
        "others_cores": round(max(0.0, busy - sum(w["cpu_cores"] for w in workers) - client), 3),
        "machine_stolen_cores": stolen,
        "load_average": os.getloadavg()[0],
        "client_tick_lag_p99_ms": max(r["tick_lag_ms"]["p99"] for r in results),
        "events": {k: sum(r["events"][k] for r in results) for k in results[0]["events"]},
    }
    step["reply_ok"] = step["connected"] == n and step["dropped"] == 0 and step["bursts"] > 0 and p99 <= args.target_p99
    step["ok"] = step["reply_ok"] and all(w["loop_lag_p99_ms"] <= 1000 * args.target_lag for w in workers)
    for _ in range(60):  # the sessions close before the next step
        if server.scraper.active() == 0:
            break
        await asyncio.sleep(0.5)
    return step


def describe(step: dict[str, Any]) -> str:
    lags = "/".join(f"{w['loop_lag_p99_ms']:.0f}" for w in step["workers"])
    cpu = "/".join(f"{w['cpu_cores']:.2f}" for w in step["workers"])
    split = "/".join(f"{w['sessions']:.0f}" for w in step["workers"])
    r = step["reply_ms"]
    return (
        f"{step['sessions']:>5} sessions ({split}): reply p50 {r['p50']:.0f} p99 {r['p99']:.0f} ms, "
        f"missed {step['missed']}/{step['bursts']}, loop lag p99 {lags} ms, worker CPU {cpu}, "
        f"client CPU {step['client_cpu_cores']:.2f} (tick lag p99 {step['client_tick_lag_p99_ms']:.0f} ms), "
        f"other programs {step['others_cores']:.2f}, "
        f"ramp {step['ramp_s']:.1f} s -> {'ok' if step['ok'] else 'FAIL'}"
    )


async def search(server: Server, args: argparse.Namespace, start: int) -> tuple[list[dict[str, Any]], int]:
    """Grow the per-worker count until a step fails, then bisect; returns the steps and the count held."""
    steps: list[dict[str, Any]] = []
    low, high, per = 0, 0, start
    for _ in range(args.max_steps):
        for attempt in range(2):  # a step failed while other programs took a core is run again, once
            await quiet(args.max_others)
            step = await run_step(server, per * server.workers, args)
            steps.append(step)
            print(f"  {server.workers} worker(s): {describe(step)}", flush=True)
            if step["ok"] or step["others_cores"] <= args.max_others or attempt:
                break
        if step["ok"]:
            low = per
        else:
            high = per
        if high and high - low <= max(20, args.precision * low):
            break
        if not high:
            per = int(per * args.grow)
        else:  # bisect; from a first step that failed, come down by a quarter rather than half
            per = (low + high) // 2 if low else int(high * 0.75)
        if per > args.limit:
            break
    return steps, low * server.workers


async def quiet(limit: float, timeout: float = 90.0) -> None:
    """Wait (up to ``timeout``) until other programs use under ``limit`` cores: the box may be shared."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy0, t0 = machine_cpu()[0], time.monotonic()
        await asyncio.sleep(1.0)
        if (machine_cpu()[0] - busy0) / (time.monotonic() - t0) < limit:
            return


def summary(workers: int, steps: list[dict[str, Any]], held: int, idle_rss: dict[int, int]) -> dict[str, Any]:
    """One worker count's result: what it held, and its costs at the largest step it held."""
    out: dict[str, Any] = {"workers": workers, "held": held, "per_core": held / workers}
    # The reply latency alone (the loop lag not counted): the largest step that met it, a lower bound.
    out["held_by_reply"] = max((s["sessions"] for s in steps if s["reply_ok"]), default=0)
    best = max((s for s in steps if s["ok"]), key=lambda s: s["sessions"], default=None)
    if best is not None:
        cores = sum(w["cpu_cores"] for w in best["workers"])
        out["cpu_ms_per_session_second"] = round(1000 * cores / best["sessions"], 3)
        out["client_cpu_cores"] = best["client_cpu_cores"]
        out["reply_ms"] = best["reply_ms"]
    # RSS does not shrink back after a bigger step: take the largest step that no bigger one preceded.
    fresh = [s for i, s in enumerate(steps) if all(p["sessions"] <= s["sessions"] for p in steps[:i])]
    top = max(fresh, key=lambda s: s["sessions"])
    grown = sum(w["rss_kb"] - idle_rss[w["pid"]] for w in top["workers"])
    out["rss_kb_per_session"] = round(grown / top["sessions"], 1)
    out["steps"] = steps
    return out


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    import yardstick  # bench/yardstick.py, beside this script

    started = time.time()
    yard = [yardstick.measure()] if args.yardstick else []
    configs, held_one = [], 0
    for workers in (int(w) for w in args.workers.split(",")):
        log = Path(tempfile.gettempdir()) / f"p6-serve-{workers}.log"
        server = Server(workers, secrets.token_urlsafe(16), log, experiments=args.experiment)
        try:
            await server.scraper.pin()
            scrape = asyncio.get_running_loop().create_task(server.scraper.run())
            start = args.start if workers == 1 or not held_one else max(args.start, held_one)
            steps, held = await search(server, args, start)
            scrape.cancel()
        finally:
            server.stop()
        held_one = held_one or held
        extra = {"worker_pinned": server.pinned, "idle_rss_kb": list(server.idle_rss_kb.values())}
        configs.append({**summary(workers, steps, held, server.idle_rss_kb), **extra})
    yard += [yardstick.measure()] if args.yardstick else []
    one = next((c["held"] for c in configs if c["workers"] == 1), 0)
    for c in configs:
        c["ratio_to_one_worker"] = round(c["held"] / one, 2) if one else None
    return {
        "configs": configs,
        "yardstick_ms": round(statistics.median(yard), 2) if yard else None,
        "yardstick_samples_ms": yard,
        "_meta": {
            "machine": f"{os.uname().machine}, {os.cpu_count()} cores, Python {sys.version.split()[0]}",
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "seconds": round(time.time() - started, 1),
            "criterion": f"reply p99 <= {args.target_p99} s and worker loop lag p99 <= {args.target_lag} s",
            "experiments": args.experiment,
            "step": f"{args.settle} s settle + {args.seconds} s measured, {args.generators} generator process(es)",
        },
    }


async def watch(args: argparse.Namespace, out: Path) -> None:
    """One step of one worker with ``args.watch`` sessions, the worker watched (see p6_workers._Window)."""
    log = Path(tempfile.gettempdir()) / "p6-serve-watch.log"
    server = Server(1, secrets.token_urlsafe(16), log, watch=out, cprofile=args.cprofile, experiments=args.experiment)
    try:
        await server.scraper.pin()
        scrape = asyncio.get_running_loop().create_task(server.scraper.run())
        await quiet(args.max_others)
        print(describe(await run_step(server, args.watch, args, watch=True)), flush=True)
        scrape.cancel()
    finally:
        server.stop()


def print_watch(out: Path, cprofile: bool) -> None:
    report = json.loads(Path(f"{out}.gc.json").read_text())
    stalls = report.pop("stalls_over_50ms")
    print("in the window:", json.dumps(report))
    gc_stalls = sum(s["gc_ms"] >= s["lag_ms"] / 2 for s in stalls)
    print(f"loop stalls over 50 ms: {len(stalls)}, {gc_stalls} of them mostly garbage collection: {stalls}")
    if cprofile:
        stats = pstats.Stats(str(out))
        stats.sort_stats("tottime").print_stats(35)
        stats.sort_stats("cumulative").print_stats(45)
        print(f"full profile: {out} (python -m pstats {out})")


def table(result: dict[str, Any]) -> str:
    """The results as a Markdown table, with the machine and the yardstick."""
    meta = result["_meta"]
    lines = [
        f"{meta['machine']}; {meta['when']}; {meta['seconds']} s; experiments: {meta['experiments'] or 'none'}",
        "",
        "| workers | held | per core | vs 1 worker | reply p99 alone | CPU per session | RSS per session | client |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in result["configs"]:
        cpu, rss = c.get("cpu_ms_per_session_second", "–"), c.get("rss_kb_per_session", "–")
        lines.append(
            f"| {c['workers']} | {c['held']} | {c['per_core']:.0f} | {c['ratio_to_one_worker']} | "
            f"{c['held_by_reply']} | {cpu} ms/s | {rss} KB | {c.get('client_cpu_cores', '–')} cores |"
        )
    lines.append(f"Yardstick (bench/yardstick.py, before and after): {result['yardstick_samples_ms']} ms")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2", help="worker counts to measure, in order")
    parser.add_argument("--start", type=int, default=100, help="first session count per worker")
    parser.add_argument("--grow", type=float, default=2.0, help="factor between steps until one fails")
    parser.add_argument("--precision", type=float, default=0.15, help="stop bisecting at this relative gap")
    parser.add_argument("--limit", type=int, default=4000, help="most sessions per worker tried")
    parser.add_argument("--max-steps", type=int, default=6, help="steps per worker count")
    parser.add_argument("--settle", type=float, default=4.0, help="seconds between the ramp and the window")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per step")
    parser.add_argument("--generators", type=int, default=1, help="load generator processes")
    parser.add_argument("--target-p99", type=float, default=1.0, help="reply p99 limit, seconds")
    parser.add_argument("--target-lag", type=float, default=0.1, help="worker loop lag p99 limit, seconds")
    parser.add_argument("--max-others", type=float, default=0.25, help="cores other programs may use (see quiet)")
    parser.add_argument("--no-yardstick", dest="yardstick", action="store_false")
    parser.add_argument("--json", type=Path, default=BENCH / "results" / "p6.json")
    parser.add_argument("--watch", type=int, default=0, help="instead: one step of one worker, with its GC pauses")
    parser.add_argument("--cprofile", action="store_true", help="with --watch: and a cProfile of the worker")
    parser.add_argument(
        "--experiment",
        action="append",
        choices=EXPERIMENTS,
        default=[],
        help="change the workers, to see what a fix would gain (see p6_workers.wrapped_server)",
    )
    args = parser.parse_args()
    if args.watch:
        out = Path(tempfile.gettempdir()) / "p6-worker.prof"
        asyncio.run(watch(args, out))
        print_watch(out, args.cprofile)
        return
    result = asyncio.run(bench(args))
    args.json.parent.mkdir(exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(table(result))


if __name__ == "__main__":
    main()
