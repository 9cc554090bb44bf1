"""P6's load generator: real-time ``/ws`` sessions from one process, one clock.

    P6_TOKEN=... python bench/p6_client.py --port P --sessions N [--offset I --total T]

Opens N raw-PCM WebSocket sessions to ``vocalis serve`` (``/ws``) and
streams 20 ms frames of 16 kHz PCM in real time: 1 s of tone (the fakes'
speech), then 3 s of silence, over and over. Session ``i`` of ``T`` starts
its cycle ``i / T`` of the way through, so the bursts are spread evenly.
One asyncio loop and one 20 ms timer drive every session (a late tick sends
the frames it owes at once, so each session's audio stays real-time).

WebSocket is spoken on raw sockets with pre-built frames: a client frame
must be masked, and a zero masking key (which RFC 6455 allows) makes the
masked frame the same bytes every time, so a frame costs one ``write``.
The server unmasks it as any other.

After the ramp and ``--settle`` seconds it measures for ``--seconds``: the
reply latency (the last frame of a burst written to the first binary agent
audio frame read; a reply not there when the next burst starts, 3 s later,
is missed), its own tick lag and CPU. It prints ``measuring`` and
``measured`` at the window's edges, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import resource
import secrets
import time
from typing import Any

TICK = 0.02  # seconds of audio per frame
CYCLE = 200  # ticks per speech cycle: 4 s
SPEECH = 50  # ticks of tone per cycle: 1 s
REPLY_TIMEOUT = 3.0  # a reply later than this (the next burst starts) is missed
RATE = 16000
TOKEN_ENV = "P6_TOKEN"


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame with a zero key (masking is then the identity)."""
    size = len(payload)
    if size < 126:
        head = bytes([0x80 | opcode, 0x80 | size])
    elif size < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + size.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def _frames() -> tuple[bytes, bytes]:
    from vocalis.testing.fakes import tone  # what the fake VAD hears as speech

    speech = tone(TICK, RATE).data
    return client_frame(0x2, speech), client_frame(0x2, bytes(len(speech)))


class Session(asyncio.Protocol):
    """One ``/ws`` client: writes a frame per tick, times the agent's replies."""

    def __init__(self, stats: Stats, phase: int, request: bytes) -> None:
        self.stats = stats
        self.phase = phase
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.buffer = bytearray()
        self.live = False
        self.speech_end = 0.0  # when the last frame of the last burst was written; 0: answered

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.live:
            self.stats.dropped += 1
        self.live = False
        if not self.opened.done():
            self.opened.set_result(False)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if not self.opened.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            ok = buf.startswith(b"HTTP/1.1 101")
            del buf[: end + 4]
            self.live = ok
            self.opened.set_result(ok)
        while len(buf) >= 2:
            opcode, size, start = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if size == 126:
                size, start = int.from_bytes(buf[2:4], "big"), 4
            elif size == 127:
                size, start = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < start + size:
                return
            payload = bytes(buf[start : start + size])
            del buf[: start + size]
            self.on_message(opcode, payload)

    def on_message(self, opcode: int, payload: bytes) -> None:
        stats = self.stats
        if opcode == 0x2:  # agent audio
            if self.speech_end:
                stats.reply(time.monotonic() - self.speech_end, self.speech_end)
                self.speech_end = 0.0
        elif opcode == 0x1:
            for kind in stats.events:
                if b'"type":"%s"' % kind.encode() in payload:
                    stats.events[kind] += 1
        elif opcode == 0x9 and self.transport is not None:  # ping
            self.transport.write(client_frame(0xA, payload))
        elif opcode == 0x8 and self.transport is not None:  # the server closes
            self.live = False
            self.transport.close()

    def tick(self, k: int, speech: bytes, silence: bytes) -> None:
        if not self.live or self.transport is None:
            return
        c = (k - self.phase) % CYCLE
        if c < SPEECH:
            if c == 0 and self.speech_end:  # no reply before the next burst
                self.stats.miss(self.speech_end)
                self.speech_end = 0.0
            self.transport.write(speech)
            if c == SPEECH - 1:
                self.speech_end = time.monotonic()
                self.stats.burst(self.speech_end)
        else:
            self.transport.write(silence)


class Stats:
    """What one generator measured inside its window."""

    def __init__(self) -> None:
        self.window = (math.inf, math.inf)
        self.latencies: list[float] = []
        self.bursts = self.missed = self.dropped = 0
        self.lags: list[float] = []
        self.events = {"user_turn": 0, "agent_turn": 0, "clear": 0, "error": 0}

    def inside(self, t: float) -> bool:
        return self.window[0] <= t <= self.window[1]

    def burst(self, t: float) -> None:
        self.bursts += self.inside(t)

    def reply(self, latency: float, t: float) -> None:
        if self.inside(t):
            self.latencies.append(latency)

    def miss(self, t: float) -> None:
        self.missed += self.inside(t)


async def _clock(sessions: list[Session], stats: Stats, stop: asyncio.Event) -> None:
    """One timer for every session: frame k goes out at start + k * 20 ms (late ones in a burst)."""
    speech, silence = _frames()
    start, k = time.monotonic(), 0
    while not stop.is_set():
        due = start + k * TICK
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        stats.lags.append(time.monotonic() - due)
        for session in sessions:
            session.tick(k, speech, silence)
        k += 1


async def generate(args: argparse.Namespace) -> dict[str, Any]:
    """Open ``args.sessions`` sessions, stream for the settle time and the window, report."""
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    loop = asyncio.get_running_loop()
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    path = f"/ws?token={os.environ[TOKEN_ENV]}&sample_rate={RATE}"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    stats, sessions, stop = Stats(), [], asyncio.Event()
    clock = loop.create_task(_clock(sessions, stats, stop))
    gate = asyncio.Semaphore(32)  # handshakes at once (the server's pending-connection cap is 128)
    failed = 0

    async def connect(index: int) -> None:
        nonlocal failed
        session = Session(stats, round(index * CYCLE / args.total) % CYCLE, request)
        async with gate:
            try:
                await loop.create_connection(lambda: session, "127.0.0.1", args.port)
                ok = await asyncio.wait_for(session.opened, 30)
            except (OSError, TimeoutError):
                ok = False
        if ok:
            sessions.append(session)
        else:
            failed += 1

    began = time.monotonic()
    await asyncio.gather(*(connect(args.offset + i) for i in range(args.sessions)))
    ramp = time.monotonic() - began
    w0 = time.monotonic() + args.settle
    stats.window = (w0, w0 + args.seconds)
    await asyncio.sleep(args.settle)
    stats.lags.clear()
    print("measuring", flush=True)  # the parent may start a profiler now
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.sleep(args.seconds)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    print("measured", flush=True)
    lags = sorted(stats.lags)
    await asyncio.sleep(REPLY_TIMEOUT)  # replies to the window's last bursts
    stop.set()
    await clock
    pending = [s.speech_end for s in sessions if s.speech_end]
    stats.missed += sum(stats.inside(t) for t in pending)
    for session in sessions:
        if session.transport is not None and session.live:
            session.live = False
            session.transport.write(client_frame(0x8, (1000).to_bytes(2, "big")))
            session.transport.close()
    await asyncio.sleep(0.2)
    return {
        "sessions": len(sessions),
        "failed": failed,
        "dropped": stats.dropped,
        "ramp_s": round(ramp, 2),
        "window": list(stats.window),
        "bursts": stats.bursts,
        "missed": stats.missed,
        "latencies": [round(x, 4) for x in stats.latencies],
        "tick_lag_ms": {q: round(1000 * pct(lags, p), 2) for q, p in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))},
        "cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 3),
        "events": stats.events,
    }


def pct(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted values (nearest rank); NaN when empty."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sessions", type=int, required=True)
    parser.add_argument("--offset", type=int, default=0, help="index of the first session (for the phases)")
    parser.add_argument("--total", type=int, default=0, help="sessions over all generators (default: --sessions)")
    parser.add_argument("--settle", type=float, default=4.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cpus", default="", help="cores to run on, e.g. 1,2 (default: any)")
    args = parser.parse_args()
    args.total = args.total or args.sessions
    print(json.dumps(asyncio.run(generate(args))), flush=True)


if __name__ == "__main__":
    main()
