"""Generate the hesitation test set: cut-off requests that trail off in a filler.

Writes ``tests/plugins/smartturn/data/`` (16 kHz mono 16-bit WAV, 0.2 s of
silence before and 0.3 s after, like ``tests/data/turns``) and a
``manifest.json`` of ``{"file", "text", "complete": false}``. The Piper voice
ends plain cut-off texts with sentence-final prosody, so an audio model hears
them as finished; a trailing "uh"/"um" is the hesitation cue people actually
give when they pause mid-turn.

Run: ``.venv/bin/python plugins/smartturn/scripts/make_hesitation_data.py``
(needs vocalis-piper installed).
"""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path

from vocalis.audio import AudioFrame, concat, resample
from vocalis_piper import PiperTTS

ROOT = Path(__file__).resolve().parents[3]
OUT = ROOT / "tests/plugins/smartturn/data"
RATE = 16_000

TEXTS = [
    "I would like to book a table for, uh",
    "My phone number is five five five, um",
    "Can you tell me the, uh",
    "I was wondering if you could, um",
    "Set a reminder to pick up the, uh",
    "What's the best way to get to, um",
    "I need to change my flight to, uh",
    "Could you send an email to my, um",
    "The meeting is scheduled for next, uh",
]


async def main() -> None:
    tts = PiperTTS(sentence_silence=0.2)
    await tts.prewarm()
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = []
    for index, text in enumerate(TEXTS, 1):
        speech = concat([frame async for frame in tts.synthesize(text)])
        assert speech is not None
        speech = resample(speech, RATE)
        audio = concat([AudioFrame.silence(0.2, RATE), speech, AudioFrame.silence(0.3, RATE)])
        assert audio is not None
        name = f"hesitation{index:02d}.wav"
        with wave.open(str(OUT / name), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(audio.data)
        manifest.append({"file": name, "text": text, "complete": False})
        print(f"{name} {audio.duration:.2f} s  {text}")
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
