"""P4: offline voice-to-voice latency with the default offline stack (Vocalis only).

Feeds the Piper-made spoken questions of ``tests/data/speech`` one by one, in
real time, to a session on ``CascadingPipeline()`` (Silero, Whisper, Smart
Turn, SmolLM2 on llama.cpp, Piper), and reads each turn's end-to-end latency
(end of the user's speech → first agent audio out) from the session's own
metrics. The reply is cut off once it has started, to move on.

Prints ``{"samples_ms": [...], "stages_ms": {...}}`` as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from vocalis import AgentSession, CascadingPipeline, EOUConfig
from vocalis.audio import AudioFrame
from vocalis.session.assistant import DefaultAssistant
from vocalis.transports.file import read_wav

sys.path.insert(0, str(Path(__file__).parent))
from vocalis_driver import BenchTransport

DATA = Path(__file__).resolve().parents[2] / "tests" / "data" / "speech"


async def main(count: int) -> dict[str, Any]:
    manifest = json.loads((DATA / "manifest.json").read_text())[:count]
    # Local models cost nothing per request: start the LLM before the turn is committed.
    pipeline = CascadingPipeline(eou_config=EOUConfig(preemptive_generation=True))
    session = AgentSession(DefaultAssistant(), pipeline)
    transport = BenchTransport()
    await session.start(transport)
    assert transport.sink is not None
    loop = asyncio.get_running_loop()
    silence = AudioFrame.silence(0.02, 16_000)
    samples: list[float] = []
    stages: dict[str, list[float]] = {"stt": [], "eou": [], "llm_ttft": [], "tts_ttfb": []}
    for item in manifest:
        audio = read_wav(DATA / item["file"])
        frames = audio.frames(0.02) + [silence] * 15
        turns_before = len(session.metrics)
        start = loop.time()
        for index, frame in enumerate(frames):
            transport.sink.push_audio(frame)
            await asyncio.sleep(max(0.0, start + (index + 1) * 0.02 - loop.time()))
        # Keep the microphone open (silence) until the reply starts, then cut it off.
        deadline = loop.time() + 20
        while loop.time() < deadline and not (session.current_speech and session.audio_output.speaking):
            transport.sink.push_audio(silence)
            await asyncio.sleep(0.02)
        session.interrupt(force=True)
        while len(session.metrics) == turns_before and loop.time() < deadline:
            transport.sink.push_audio(silence)
            await asyncio.sleep(0.02)
        if len(session.metrics) > turns_before:
            m = session.metrics[-1]
            if m.e2e_latency is not None:
                samples.append(m.e2e_latency * 1000)
                for key, value in (
                    ("stt", m.stt_latency),
                    ("eou", m.eou_delay),
                    ("llm_ttft", m.llm_ttft),
                    ("tts_ttfb", m.tts_ttfb),
                ):
                    if value is not None:
                        stages[key].append(value * 1000)
        await asyncio.sleep(0.2)
    await session.close()
    return {"samples_ms": samples, "stages_ms": {k: statistics.median(v) for k, v in stages.items() if v}}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=12)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.count))))
