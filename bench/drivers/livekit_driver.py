"""LiveKit Agents driver for the side-by-side benchmark (see bench/README.md).

Runs a real ``AgentSession`` + ``Agent`` without a room: ``session.input.audio`` and
``session.output.audio`` are this driver's own ``io.AudioInput`` / ``io.AudioOutput``
subclasses, and the providers are zero-latency fakes built on LiveKit's public base
classes (``stt.STT``/``stt.RecognizeStream``, ``llm.LLM``/``llm.LLMStream``,
``tts.TTS``/``tts.ChunkedStream``, ``vad.VAD``/``vad.VADStream``).

    python livekit_driver.py import
    python livekit_driver.py start
    python livekit_driver.py p1 --turns 60 [--turn-detection vad|stt]
    python livekit_driver.py p2 --turns 20 [--via vad|api]
    python livekit_driver.py p3 --sessions 100 --seconds 5

The last stdout line is one JSON object; diagnostics go to stderr.
Nothing from LiveKit is imported at module level, so ``import`` times a cold import.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time


def _fakes():
    """The fake providers and I/O (imports LiveKit)."""
    import livekit_fakes

    return livekit_fakes


def _log(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


def _rss_kb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024


def _import_livekit() -> None:
    """What an agent needs: the session runtime, the provider bases, the I/O bases."""
    from livekit import rtc  # noqa: F401
    from livekit.agents import Agent, AgentSession, llm, stt, tts, vad  # noqa: F401
    from livekit.agents.voice import io  # noqa: F401


def _new_session(fk, *, turn_detection: str = "vad", interrupt_min_s: float = 0.02):
    """A session with every delay at zero or its minimum, preemptive generation off."""
    from livekit.agents import AgentSession

    vad_, stt_ = fk.FrameVAD(), fk.ToldSTT()
    session = AgentSession(
        vad=vad_,
        stt=stt_,
        llm=fk.TokenLLM(),
        tts=fk.SentenceTTS(),
        turn_handling={
            "turn_detection": turn_detection,
            "endpointing": {"mode": "fixed", "min_delay": 0.0, "max_delay": 0.0},
            "interruption": {
                "enabled": True,
                "mode": "vad",  # no adaptive (cloud) model
                # 0 would make every silent VAD inference (speech_duration 0 >= 0) an
                # interruption; one 20 ms speech frame is the smallest meaningful value
                "min_duration": interrupt_min_s,
                "min_words": 0,
                "resume_false_interruption": False,
                "false_interruption_timeout": None,
            },
            "preemptive_generation": {"enabled": False},
        },
        aec_warmup_duration=None,
        user_away_timeout=None,
        tts_text_transforms=None,
        session_close_transcript_timeout=0.0,  # shutdown only: don't wait 2 s per session
    )
    inp, out = fk.QueueAudioInput(), fk.PacedAudioOutput()
    session.input.audio = inp
    session.output.audio = out
    return session, vad_, stt_, inp, out


def _new_agent():
    from livekit.agents import Agent

    return Agent(instructions="You are a benchmark agent.")


class _StateWaiter:
    """Await AgentSession agent/user state changes."""

    def __init__(self, session) -> None:
        self.agent_state = "initializing"
        self.user_state = "listening"
        self._waiters: list[tuple[str, str, asyncio.Future]] = []
        session.on("agent_state_changed", self._on_agent)
        session.on("user_state_changed", self._on_user)

    def _fire(self, kind: str, state: str) -> None:
        for w in list(self._waiters):
            if w[0] == kind and w[1] == state and not w[2].done():
                w[2].set_result(time.perf_counter())
                self._waiters.remove(w)

    def _on_agent(self, ev) -> None:
        self.agent_state = ev.new_state
        self._fire("agent", ev.new_state)

    def _on_user(self, ev) -> None:
        self.user_state = ev.new_state
        self._fire("user", ev.new_state)

    def expect(self, kind: str, state: str) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((kind, state, fut))
        return fut


async def _user_utterance(inp, waiter: _StateWaiter, speech_frames: int = 10) -> None:
    """User speaks for speech_frames*20 ms then one silent frame: VAD start then end of speech."""
    fk = _fakes()
    sp, sil = fk.make_frame(True), fk.make_frame(False)
    done = waiter.expect("user", "listening")
    for _ in range(speech_frames):
        inp.queue.put_nowait(sp)
    inp.queue.put_nowait(sil)
    await asyncio.wait_for(done, 5)


# --------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------


def scenario_import() -> dict:
    t0 = time.perf_counter()
    _import_livekit()
    return {"import_s": time.perf_counter() - t0}


async def scenario_start() -> dict:
    fk = _fakes()
    t0 = time.perf_counter()
    session, *_ = _new_session(fk)
    await session.start(_new_agent(), record=False)
    dt = time.perf_counter() - t0
    await session.aclose()
    return {"start_s": dt}


async def _p1_run(turns: int, turn_detection: str) -> list[float]:
    fk = _fakes()
    session, _vad, stt_, inp, out = _new_session(fk, turn_detection=turn_detection)
    waiter = _StateWaiter(session)
    await session.start(_new_agent(), record=False)
    samples: list[float] = []
    for i in range(turns + 2):  # two warm-up turns, discarded
        await _user_utterance(inp, waiter)
        await asyncio.sleep(0.01)  # quiet loop before the measured event
        first = asyncio.get_running_loop().create_future()
        out.on_first_frame = lambda t, f=first: f.done() or f.set_result(t)
        done = waiter.expect("agent", "listening")
        t0 = time.perf_counter()
        stt_.emit_final(fk.USER_TEXT, end_of_speech=(turn_detection == "stt"))
        t1 = await asyncio.wait_for(first, 5)
        await asyncio.wait_for(done, 5)  # reply fully played out (real-time paced)
        if i >= 2:
            samples.append((t1 - t0) * 1000)
    await session.aclose()
    return samples


async def scenario_p1(turns: int, turn_detection: str) -> dict:
    return {"samples_ms": await _p1_run(turns, turn_detection)}


async def scenario_p2(turns: int, via: str) -> dict:
    fk = _fakes()
    session, vad_, stt_, inp, out = _new_session(fk)
    waiter = _StateWaiter(session)
    await session.start(_new_agent(), record=False)
    samples: list[float] = []
    sp, sil = fk.make_frame(True), fk.make_frame(False)
    for i in range(turns + 1):  # one warm-up barge-in, discarded
        await _user_utterance(inp, waiter)
        first = asyncio.get_running_loop().create_future()
        out.on_first_frame = lambda t, f=first: f.done() or f.set_result(t)
        speaking = waiter.expect("agent", "speaking")
        stt_.emit_final(fk.USER_TEXT)
        await asyncio.wait_for(first, 5)
        await asyncio.wait_for(speaking, 5)
        await asyncio.sleep(0.05)  # 50 ms into the 200 ms reply
        assert out.played() < 0.2, "reply finished before the barge-in"
        out.clear_t = None
        listening = waiter.expect("agent", "listening")
        if via == "api":
            t0 = time.perf_counter()
            session.interrupt()
        else:
            # user barge-in: the first speech frame is the decision (min_duration = 1 frame)
            decided = asyncio.get_running_loop().create_future()
            vad_.on_speech_detected = lambda t, f=decided: f.done() or f.set_result(t)
            inp.queue.put_nowait(sp)
            t0 = await asyncio.wait_for(decided, 5)
            vad_.on_speech_detected = None
        await asyncio.wait_for(listening, 5)
        await asyncio.sleep(0.02)
        assert out.clear_t is not None, "no clear_buffer() after the interruption"
        # the output stops at clear_buffer(); a frame captured later would count as well
        t1 = max(out.clear_t, out.last_frame_t or 0.0)
        if via != "api":  # end the barge-in utterance (no transcript -> no reply)
            done = waiter.expect("user", "listening")
            inp.queue.put_nowait(sil)
            await asyncio.wait_for(done, 5)
        await asyncio.sleep(0.05)
        if i >= 1:
            samples.append((t1 - t0) * 1000)
    await session.aclose()
    return {"samples_ms": samples}


async def scenario_p3(n: int, seconds: float, warmup: float = 1.0) -> dict:
    import gc

    fk = _fakes()
    silence = fk.make_frame(False)
    gc.collect()
    rss0 = _rss_kb()
    sessions, inputs = [], []
    t_setup = time.perf_counter()
    for _ in range(n):
        session, _v, _s, inp, _o = _new_session(fk)
        await session.start(_new_agent(), record=False)
        sessions.append(session)
        inputs.append(inp.queue)
    t_setup = time.perf_counter() - t_setup

    period = fk.FRAME_MS / 1000
    lags: list[float] = []
    rss1 = None
    start = time.perf_counter() + period
    k = 0
    total_ticks = int((warmup + seconds) / period)
    warm_ticks = int(warmup / period)
    while k < total_ticks:
        scheduled = start + k * period
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        actual = time.perf_counter()
        if k >= warm_ticks:
            lags.append((actual - scheduled) * 1000)
        for q in inputs:
            q.put_nowait(silence)
        if k == warm_ticks:
            rss1 = _rss_kb()  # set up and running for `warmup` seconds
        k += 1
    lags.sort()
    p99 = lags[min(len(lags) - 1, int(round(0.99 * len(lags))) - 1)] if lags else 0.0
    backlog = max(q.qsize() for q in inputs) if inputs else 0
    _log(
        f"p3: n={n} setup={t_setup:.2f}s ticks={len(lags)} lag p50={lags[len(lags) // 2]:.2f} "
        f"p99={p99:.2f} max={lags[-1]:.2f} ms; max input backlog={backlog} frames; "
        f"rss {rss0 / 1024:.1f}->{(rss1 or 0) / 1024:.1f} MB (at end {_rss_kb() / 1024:.1f} MB)"
    )
    try:  # teardown is not measured; don't let a slow close fail the run
        await asyncio.wait_for(asyncio.gather(*(s.aclose() for s in sessions)), 30)
    except Exception as e:
        _log(f"p3: session close: {e!r}")
    return {
        "sessions": n,
        "lag_p99_ms": p99,
        "rss_per_session_kb": ((rss1 or rss0) - rss0) / n,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["import", "start", "p1", "p2", "p3"])
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument(
        "--turn-detection",
        choices=["vad", "stt"],
        default="vad",
        help="p1: 'vad' (VAD end of speech, then the final transcript ends the turn) or "
        "'stt' (the STT's final transcript + END_OF_SPEECH end the turn)",
    )
    ap.add_argument(
        "--via",
        choices=["vad", "api"],
        default="vad",
        help="p2: barge-in by user speech through the VAD, or session.interrupt()",
    )
    a = ap.parse_args()

    if a.scenario == "import":
        res = scenario_import()
    else:
        import logging

        logging.getLogger("livekit.agents").setLevel(logging.WARNING)
        if a.scenario == "start":
            res = asyncio.run(scenario_start())
        elif a.scenario == "p1":
            res = asyncio.run(scenario_p1(a.turns, a.turn_detection))
        elif a.scenario == "p2":
            res = asyncio.run(scenario_p2(a.turns, a.via))
        else:
            res = asyncio.run(scenario_p3(a.sessions, a.seconds))
    if "samples_ms" in res and res["samples_ms"]:
        s = sorted(res["samples_ms"])
        _log(
            f"{a.scenario}: n={len(s)} median={s[len(s) // 2]:.2f} ms "
            f"p90={s[int(0.9 * (len(s) - 1))]:.2f} max={s[-1]:.2f}"
        )
    sys.stdout.flush()
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
