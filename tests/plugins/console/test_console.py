"""The console transport with a sound card the test drives, and the clear
errors of ``vocalis console`` on machines without audio."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from vocalis import Agent, AgentSession, CascadingPipeline
from vocalis.audio import AudioFrame, resample
from vocalis.cli.main import cli
from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, tone
from vocalis_console import AudioDeviceError, ConsoleTransport
from vocalis_console import devices as devices_module


class ScriptedDevice:
    """A 48 kHz 'sound card': the test plays into the mic from a thread and
    reads what the speaker was given."""

    sample_rate = 48_000

    def __init__(self) -> None:
        self.on_input: Any = None
        self.pull_output: Any = None
        self.played = bytearray()
        self.closed = 0

    def start(self, on_input: Any, pull_output: Any) -> None:
        self.on_input, self.pull_output = on_input, pull_output

    def close(self) -> None:
        self.closed += 1

    def speak(self, frame: AudioFrame) -> None:
        """Feed the mic in 20 ms blocks from another thread, like PortAudio does."""
        resampled = resample(frame, self.sample_rate)
        block = self.sample_rate // 50 * 2

        def run() -> None:
            for i in range(0, len(resampled.data), block):
                self.on_input(resampled.data[i : i + block])

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()

    def drain_speaker(self, seconds: float) -> None:
        self.played += self.pull_output(int(seconds * self.sample_rate) * 2)


def _session(device: ScriptedDevice, **settings: Any) -> tuple[AgentSession, ConsoleTransport]:
    pipeline = CascadingPipeline(
        stt=FakeSTT(["hello there"]),
        llm=FakeLLM(["Hi! Nice to hear you."]),
        tts=FakeTTS(),
        vad=FakeVAD(),
        turn_detector=None,
    )
    return AgentSession(Agent("Be brief."), pipeline), ConsoleTransport(device=device, **settings)


async def _wait(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_microphone_in_speaker_out() -> None:
    device = ScriptedDevice()
    session, transport = _session(device)
    turns: list[str] = []
    session.on("agent_turn", lambda e: turns.append(e["text"]))
    await session.start(transport)
    device.speak(tone(0.6))
    device.speak(AudioFrame.silence(1.0, 16_000))
    await _wait(lambda: len(transport.audio_output._buffer) > 0)
    device.drain_speaker(2.0)
    await _wait(lambda: bool(turns))
    await session.close()
    assert session.agent.chat_context.last_message("user").content == "hello there"
    assert turns == ["Hi! Nice to hear you."]
    samples = np.frombuffer(bytes(device.played), dtype="<i2")
    assert np.abs(samples).max() > 1000  # the agent's audio reached the speaker, at 48 kHz
    assert device.closed == 1
    await transport.aclose()
    assert device.closed == 1  # idempotent


async def test_half_duplex_mutes_the_mic_while_the_agent_speaks() -> None:
    device = ScriptedDevice()
    heard: list[AudioFrame] = []

    class Sink:
        def push_audio(self, frame: AudioFrame) -> None:
            heard.append(frame)

    transport = ConsoleTransport(device=device)
    await transport.start(Sink())
    await transport.audio_output.capture_frame(tone(1.0, 24_000))
    device.drain_speaker(0.1)  # the speaker is now playing
    device.speak(tone(0.2))
    await _wait(lambda: len(heard) >= 10)
    assert max(np.abs(f.to_numpy()).max() for f in heard) == 0  # muted: silence, not echo
    transport.audio_output.discard()  # barge-in empties the speaker's queue
    assert device.pull_output(960) == bytes(960)
    await transport.aclose()


async def test_headphones_keep_the_mic_open() -> None:
    device = ScriptedDevice()
    heard: list[AudioFrame] = []

    class Sink:
        def push_audio(self, frame: AudioFrame) -> None:
            heard.append(frame)

    transport = ConsoleTransport(device=device, half_duplex=False)
    await transport.start(Sink())
    await transport.audio_output.capture_frame(tone(1.0, 24_000))
    device.drain_speaker(0.1)
    device.speak(tone(0.2))
    await _wait(lambda: len(heard) >= 10)
    assert max(np.abs(f.to_numpy()).max() for f in heard) > 1000
    await transport.aclose()


def test_no_audio_system_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> Any:
        raise AudioDeviceError("no audio system: PortAudio could not be loaded (test)")

    monkeypatch.setattr(devices_module, "load_sounddevice", missing)
    for args in (["console"], ["console", "--list-devices"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1 and "no audio system" in result.output, result.output


def test_no_microphone_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoDevices:
        class PortAudioError(Exception):
            pass

        @staticmethod
        def query_devices(device: Any = None, kind: Any = None) -> Any:
            raise ValueError("No input device matching -1")

    monkeypatch.setattr(devices_module, "load_sounddevice", lambda: NoDevices)
    result = CliRunner().invoke(cli, ["console"])
    assert result.exit_code == 1 and "no microphone found" in result.output and "--list-devices" in result.output
