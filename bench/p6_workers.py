"""P6's view of the serving processes: pids, CPU, RSS, ``/metrics``, and experiments.

:class:`Server` starts ``python -m vocalis.testing.serve_fakes`` with N
workers and finds the worker processes; :class:`Scraper` reads each worker's
``/metrics`` every second over a keep-alive connection that the kernel gave
to that worker (``SO_REUSEPORT`` spreads connections: the socket's owner is
found in ``/proc``), with its CPU and RSS from ``/proc/<pid>``.

Run as ``python bench/p6_workers.py [--gc-freeze] [--uvloop] [--watch-to PATH] --
SERVE_FAKES_ARGS``, it is serve_fakes with an experiment applied (see
:func:`wrapped_server`); the benchmark's figures use the plain command.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import runpy
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from p6_client import pct  # bench/, beside this script

EXPERIMENTS = ("gc-freeze", "uvloop")
LAG_LOOKBACK = 2.5  # seconds vocalis_loop_lag_seconds looks back (vocalis.serve.load.CPU_WINDOW)


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def machine_cpu() -> tuple[float, float]:
    """CPU seconds the whole machine spent busy, and stolen by the hypervisor, so far."""
    with open("/proc/stat", encoding="ascii") as f:
        cols = [int(x) for x in f.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(cols[:8]) - cols[3] - cols[4]) / tick, cols[7] / tick


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError):
                continue
    return sorted(found)


def socket_owner(port: int, client_port: int, pids: list[int]) -> int | None:
    """Which worker accepted our connection from ``client_port`` (SO_REUSEPORT picks one)."""
    inode = None
    with open("/proc/net/tcp", encoding="ascii") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            if int(cols[1].split(":")[1], 16) == port and int(cols[2].split(":")[1], 16) == client_port:
                inode = cols[9]
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


async def http_get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, token: str) -> str:
    """One keep-alive request on an open connection."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    size = next(int(line.split(":")[1]) for line in head.split("\r\n") if line.lower().startswith("content-length"))
    return (await reader.readexactly(size)).decode()


def parse_metrics(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


class Scraper:
    """Scrapes every worker's ``/metrics`` each second, on a connection pinned to that worker."""

    def __init__(self, port: int, token: str, pids: list[int]) -> None:
        self.port, self.token, self.pids = port, token, pids
        self.samples: list[dict[str, Any]] = []
        self.machine: list[tuple[float, float, float]] = []  # (time, busy CPU s, stolen CPU s)
        self.conns: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def pin(self) -> None:
        for _ in range(200):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            await http_get(reader, writer, "/livez", self.token)  # accepted by now
            owner = socket_owner(self.port, writer.get_extra_info("sockname")[1], self.pids)
            if owner is not None and owner not in self.conns:
                self.conns[owner] = (reader, writer)
            else:
                writer.close()
            if len(self.conns) == len(self.pids):
                return
        raise RuntimeError("could not reach every worker")

    async def run(self) -> None:
        while True:
            self.machine.append((time.monotonic(), *machine_cpu()))
            for pid, (reader, writer) in list(self.conns.items()):
                try:
                    m = parse_metrics(await http_get(reader, writer, "/metrics", self.token))
                except (OSError, asyncio.IncompleteReadError):  # the server closed the connection
                    writer.close()
                    del self.conns[pid]
                    await self.pin()
                    continue
                e2e = {k: v for k, v in m.items() if k.startswith("vocalis_turn_stage_seconds") and '"e2e"' in k}
                self.samples.append(
                    {
                        "t": time.monotonic(),
                        "pid": pid,
                        "lag": m["vocalis_loop_lag_seconds"],
                        "active": m["vocalis_sessions_active"],
                        "admitted": m["vocalis_sessions_admitted_total"],
                        "cpu": proc_cpu(pid),
                        "rss_kb": proc_rss_kb(pid),
                        "e2e": e2e,
                    }
                )
            await asyncio.sleep(1.0)

    def active(self) -> float:
        latest = {s["pid"]: s["active"] for s in self.samples}
        return sum(latest.values())

    def busy(self, w0: float, w1: float) -> tuple[float, float]:
        """Cores the whole machine kept busy over a window, and cores stolen."""
        inside = [m for m in self.machine if w0 <= m[0] <= w1]
        (t0, b0, s0), (t1, b1, s1) = inside[0], inside[-1]
        return round((b1 - b0) / (t1 - t0), 3), round((s1 - s0) / (t1 - t0), 3)

    def window(self, pid: int, w0: float, w1: float) -> dict[str, Any]:
        """One worker's figures over a measurement window."""
        inside = [s for s in self.samples if s["pid"] == pid and w0 <= s["t"] <= w1]
        if len(inside) < 2:
            raise RuntimeError(f"no /metrics of worker {pid} in the window")
        first, last = inside[0], inside[-1]
        # The gauge is the worst lag of the last 2.5 s: a sample speaks for the window
        # only from 2.5 s into it (earlier ones would report the settling time).
        lags = sorted(s["lag"] for s in inside if s["t"] >= w0 + LAG_LOOKBACK)
        count = lambda s: s["e2e"].get('vocalis_turn_stage_seconds_count{stage="e2e"}', 0.0)  # noqa: E731
        total = lambda s: s["e2e"].get('vocalis_turn_stage_seconds_sum{stage="e2e"}', 0.0)  # noqa: E731
        turns = count(last) - count(first)
        return {
            "pid": pid,
            "sessions": last["active"],
            "admitted_total": last["admitted"],
            "loop_lag_p99_ms": round(1000 * pct(lags, 0.99), 1),
            "loop_lag_max_ms": round(1000 * lags[-1], 1),
            "cpu_cores": round((last["cpu"] - first["cpu"]) / (last["t"] - first["t"]), 3),
            "rss_kb": last["rss_kb"],
            "server_e2e_mean_ms": round(1000 * (total(last) - total(first)) / turns, 1) if turns else None,
        }


class Server:
    """``serve_fakes`` with N workers, its pids, and a scraper on each worker."""

    def __init__(
        self,
        workers: int,
        token: str,
        log: Path,
        *,
        watch: Path | None = None,
        cprofile: bool = False,
        experiments: Sequence[str] = (),
    ) -> None:
        self.workers, self.token = workers, token
        self.port = _free_port()
        command = [sys.executable, "-m", "vocalis.testing.serve_fakes"]
        wrap = (["--watch-to", str(watch)] if watch else []) + (["--cprofile"] if cprofile else [])
        wrap += [f"--{e}" for e in experiments]
        if wrap:  # experiments: this script runs serve_fakes (see wrapped_server)
            command = [sys.executable, str(Path(__file__)), *wrap, "--"]
        command += ["--port", str(self.port), "--workers", str(workers), "--max-sessions", "100000"]
        # INFO, as `vocalis serve` logs (loguru's own default would be DEBUG).
        env = {**os.environ, "VOCALIS_SERVE_TOKEN": token, "LOGURU_LEVEL": "INFO", "PYTHONDONTWRITEBYTECODE": "1"}
        self.log = log.open("w")
        self.proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.pinned = workers == 1 and (os.cpu_count() or 1) >= 2
        if self.pinned:  # now, before it starts threads: they inherit the main thread's affinity
            os.sched_setaffinity(self.proc.pid, {0})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "serving" not in line:
            raise RuntimeError(f"the server did not start: {line!r}; see {log}")
        self.pids = [self.proc.pid] if workers == 1 else children(self.proc.pid)
        self.idle_rss_kb = {pid: proc_rss_kb(pid) for pid in self.pids}
        self.scraper = Scraper(self.port, token, self.pids)

    def generator_cpus(self) -> str:
        cores = sorted(os.sched_getaffinity(0))
        return ",".join(str(c) for c in cores if c != 0) if self.pinned else ""

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wrapped_server(options: list[str], argv: list[str]) -> None:
    """serve_fakes in this process, for experiments.

    ``--gc-freeze``: move every object alive once the server is ready to the
    collector's permanent generation (``gc.freeze()``), as a server could at
    start-up. ``--uvloop``: run on uvloop's event loop (uvloop must be
    importable, e.g. through ``PYTHONPATH``). ``--watch-to PATH``: SIGUSR1
    starts watching the garbage collector and the loop's stalls (and
    cProfile with ``--cprofile``), SIGUSR2 stops and writes ``PATH.gc.json``
    (and the profile to ``PATH``).
    """
    import gc

    from vocalis.serve import workers

    count = int(argv[argv.index("--workers") + 1]) if "--workers" in argv else 1
    if count > 1 and not workers.is_worker():  # the workers run this wrapper too
        command = [sys.executable, str(Path(__file__)), *options, "--", *argv]
        port = int(argv[argv.index("--port") + 1])
        token = os.environ["VOCALIS_SERVE_TOKEN"]
        sys.exit(workers.Supervisor(count, "127.0.0.1", port, token, command=command).run())
    if "--gc-freeze" in options:
        told = workers.tell_ready

        def ready() -> None:
            gc.freeze()
            told()

        workers.tell_ready = ready  # serve_fakes imports it when it starts serving
    if "--uvloop" in options:
        import uvloop  # type: ignore[import-not-found]

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # serve_fakes runs asyncio.run()
    if "--watch-to" in options:
        _watch_on_signals(options[options.index("--watch-to") + 1], "--cprofile" in options)
    sys.argv = ["serve_fakes", *argv]
    runpy.run_module("vocalis.testing.serve_fakes", run_name="__main__", alter_sys=True)


class _Window:
    """What one worker did between SIGUSR1 and SIGUSR2: garbage collections, loop stalls, a cProfile.

    Stalls are the lags the server's own :class:`~vocalis.serve.load.LoadMonitor`
    measures (its ``record_lag`` is wrapped) over 50 ms, each with the collector
    time that overlapped it: a stall the collector explains is a GC pause.
    """

    def __init__(self, path: str, cprofile: bool) -> None:
        self.path = path
        self.prof = cProfile.Profile() if cprofile else None
        self.on = False
        self.started = 0.0
        self.gcs: list[tuple[float, float, int]] = []  # (start, end, generation), monotonic clock
        self.stalls: list[tuple[float, float]] = []  # (when the loop woke up, lag)

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.monotonic()
        elif self.on:
            self.gcs.append((self.started, time.monotonic(), info["generation"]))

    def on_lag(self, lag: float) -> None:
        if self.on and lag > 0.05:
            self.stalls.append((time.monotonic(), lag))

    def start(self) -> None:
        self.on = True
        if self.prof is not None:
            self.prof.enable()

    def stop(self) -> None:
        import gc
        from collections import Counter

        self.on = False
        if self.prof is not None:
            self.prof.disable()
            self.prof.dump_stats(self.path)
        report: dict[str, Any] = {}
        for gen in (0, 1, 2):
            pauses = [end - begin for begin, end, g in self.gcs if g == gen]
            report[f"gen{gen}"] = {"count": len(pauses), "max_ms": round(1000 * max(pauses or [0]), 1)}
        stalls = []
        for woke, lag in self.stalls:
            overlap = sum(max(0.0, min(end, woke) - max(begin, woke - lag - 0.01)) for begin, end, _ in self.gcs)
            stalls.append({"lag_ms": round(1000 * lag, 1), "gc_ms": round(1000 * overlap, 1)})
        report["stalls_over_50ms"] = stalls
        objects = gc.get_objects()
        report["tracked_objects"] = len(objects)
        report["frozen_objects"] = gc.get_freeze_count()
        report["top_types"] = dict(Counter(type(o).__qualname__ for o in objects).most_common(12))
        del objects
        began = time.perf_counter()
        gc.collect()  # what a full collection costs with these sessions
        report["full_collection_ms"] = round(1000 * (time.perf_counter() - began), 1)
        Path(self.path + ".gc.json").write_text(json.dumps(report))


def _watch_on_signals(path: str, cprofile: bool) -> None:
    import gc
    import signal

    from vocalis.serve.load import LoadMonitor

    window = _Window(path, cprofile)
    record = LoadMonitor.record_lag

    def record_lag(monitor: LoadMonitor, lag: float) -> None:
        window.on_lag(lag)
        record(monitor, lag)

    LoadMonitor.record_lag = record_lag  # type: ignore[method-assign]
    gc.callbacks.append(window.on_gc)
    signal.signal(signal.SIGUSR1, lambda *_: window.start())
    signal.signal(signal.SIGUSR2, lambda *_: window.stop())


if __name__ == "__main__":
    split = sys.argv.index("--")
    wrapped_server(sys.argv[1:split], sys.argv[split + 1 :])
