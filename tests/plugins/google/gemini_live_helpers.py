"""Helpers of the Gemini Live tests: the server fixture's checks, audio, reading events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from gemini_live_server import API_KEY, LiveServer

from vocalis.audio import AudioFrame
from vocalis.providers.realtime import RealtimeEvent, RealtimeEventType
from vocalis.testing import tone
from vocalis_google import GeminiLive
from vocalis_google.live_session import GeminiLiveSession

E = RealtimeEventType


def make_live(server: LiveServer, **overrides: Any) -> GeminiLive:
    settings: dict[str, Any] = {
        "api_key": API_KEY,
        "base_url": server.url,
        "silence_duration_ms": 300,
        "_env_file": None,
    }
    return GeminiLive(**{**settings, **overrides})


def frames(seconds: float, *, loud: bool, rate: int = 16_000) -> list[AudioFrame]:
    step = int(rate * 0.02)
    whole = tone(seconds, rate) if loud else AudioFrame.silence(seconds, rate)
    return [AudioFrame(whole.data[i : i + 2 * step], rate) for i in range(0, len(whole.data), 2 * step)]


def speak(rt: GeminiLiveSession, seconds: float = 0.6, then_silence: float = 0.4, rate: int = 16_000) -> None:
    for frame in frames(seconds, loud=True, rate=rate) + frames(then_silence, loud=False, rate=rate):
        rt.push_audio(frame)


async def read_until(
    rt: GeminiLiveSession, done: Callable[[RealtimeEvent], bool], timeout: float = 10
) -> list[RealtimeEvent]:
    events: list[RealtimeEvent] = []
    async with asyncio.timeout(timeout):
        async for event in rt:
            events.append(event)
            if done(event):
                return events
    raise AssertionError(f"the stream ended first: {[e.type for e in events]}")


def is_done(event: RealtimeEvent) -> bool:
    return event.type is E.RESPONSE_DONE


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    """Poll a condition on the server's record (bounded, not a timed assertion)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def kinds(events: list[RealtimeEvent]) -> list[E]:
    """Event types, each run of one type shown once (audio and its transcript as AUDIO)."""
    out: list[E] = []
    for event in events:
        kind = E.AUDIO if event.type is E.OUTPUT_TRANSCRIPT else event.type
        if not (out and out[-1] is kind):
            out.append(kind)
    return out


def spoken(events: list[RealtimeEvent]) -> tuple[float, str]:
    """Seconds of audio and the transcript of a run of events."""
    seconds = sum(e.frame.duration for e in events if e.type is E.AUDIO and e.frame is not None)
    return seconds, "".join(e.text for e in events if e.type is E.OUTPUT_TRANSCRIPT)
