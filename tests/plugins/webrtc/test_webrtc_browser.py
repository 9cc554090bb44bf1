"""A real Chromium talks to ``vocalis serve`` with the real offline stack.

Chromium's fake microphone plays tests/data/speech/utt01.wav ("What's the
weather like in Boston today?"); Silero, Whisper, Smart Turn, SmolLM2 and
Piper answer; the page must show the words, the agent's reply and state, and
receive the agent's audio. Closing the page must end the session.

Needs Debian's ``chromium`` and ``chromium-driver`` packages and Selenium
(which is pointed at /usr/bin/chromedriver, so it never downloads a driver).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.slow

for plugin in (
    "vocalis_silero",
    "vocalis_whisper",
    "vocalis_piper",
    "vocalis_llamacpp",
    "vocalis_smartturn",
):
    pytest.importorskip(plugin, reason="needs the offline stack (tox env `all`)")

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# CI installs the browser and sets VOCALIS_REQUIRE_BROWSER: there a missing
# browser, driver or Selenium fails the run instead of skipping the test.
if os.environ.get("VOCALIS_REQUIRE_BROWSER"):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        raise RuntimeError("VOCALIS_REQUIRE_BROWSER is set but /usr/bin/chromium or /usr/bin/chromedriver is missing")
    import selenium.webdriver as webdriver
else:
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver packages", allow_module_level=True)
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

SPEECH = Path(__file__).resolve().parents[2] / "data" / "speech" / "utt01.wav"
RATE = 48_000
DEADLINE = 60.0  # seconds for the whole conversation


def fake_microphone(path: Path) -> Path:
    """utt01 as the 48 kHz 16-bit mono WAV Chromium plays (it loops it), padded with silence."""
    import soxr

    with wave.open(str(SPEECH)) as wav:
        speech = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
        rate = wav.getframerate()
    speech = np.clip(soxr.resample(speech, rate, RATE), -32768, 32767).astype(np.int16)
    # A second before (the connection settles), eight after (the turn ends
    # and the agent answers before the file comes round again).
    samples = np.concatenate([np.zeros(RATE, np.int16), speech, np.zeros(8 * RATE, np.int16)])
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples.tobytes())
    return path


class Server:
    """``vocalis serve --port 0`` in a subprocess, its output collected."""

    def __init__(self, log: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.log_path = log
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vocalis.cli.main",
                "serve",
                "--port",
                "0",
                "--idle-timeout",
                "120",
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.url = self._wait_for_url(timeout=90)
        self.base = self.url.split("/?")[0]

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)

    def _wait_for_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if "Open http" in line:
                return line.split("Open ", 1)[1].split()[0]
        raise AssertionError(f"vocalis serve did not print its URL:\n{self.log()}")

    def sessions(self) -> int:
        with urllib.request.urlopen(f"{self.base}/healthz", timeout=5) as resp:
            return int(json.load(resp)["sessions"])

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()[-6000:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: drain, then exit
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    served = Server(tmp_path / "serve.log")
    try:
        yield served
    finally:
        served.stop()


def launch_chromium(tmp_path: Path, *extra_flags: str) -> Any:
    """Headless Chromium whose microphone plays the fake utterance (quit it when done)."""
    wav = fake_microphone(tmp_path / "mic.wav")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *extra_flags,
    ):
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager never runs (nothing is downloaded).
    return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = launch_chromium(tmp_path)
    try:
        yield driver
    finally:
        driver.quit()


def texts(driver: Any, role: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, f'[data-role="{role}"]')]


INBOUND_AUDIO = """
const report = await window.vocalisPc.getStats();
let found = null;
report.forEach((s) => {
  if (s.type === "inbound-rtp" && s.kind === "audio") {
    found = {bytes: s.bytesReceived || 0, energy: s.totalAudioEnergy || 0};
  }
});
return found;
"""


def test_a_browser_talks_to_the_agent(server: Server, browser: Any) -> None:
    browser.get(server.url)
    assert browser.find_element(By.CSS_SELECTOR, "[data-agent-state]").text == "idle"
    browser.find_element(By.ID, "toggle").click()

    deadline = time.monotonic() + DEADLINE
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        users = " ".join(texts(browser, "user")).lower()
        agents = [t for t in texts(browser, "agent") if t.strip()]
        states = browser.execute_script("return window.vocalisStates")
        audio = browser.execute_script(INBOUND_AUDIO) if browser.execute_script("return !!window.vocalisPc") else None
        seen = {
            "users": users,
            "agents": agents,
            "states": states,
            "audio": audio,
            "notice": browser.find_element(By.ID, "notice").text,
        }
        if (
            "weather" in users
            and "boston" in users
            and agents
            and "speaking" in states
            and audio is not None
            and audio["energy"] > 0
        ):
            break
        time.sleep(0.5)  # polling the page, not synchronising
    else:
        raise AssertionError(f"the conversation did not happen within {DEADLINE:.0f} s: {seen}\n{server.log()}")

    assert server.sessions() == 1
    assert audio["bytes"] > 0
    current = browser.find_element(By.CSS_SELECTOR, "[data-agent-state]")
    assert current.get_attribute("data-agent-state") == current.text

    # The browser leaves: the session ends on the server.
    browser.get("about:blank")
    deadline = time.monotonic() + 20
    while server.sessions() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.sessions() == 0, server.log()
    assert server.stop() == 0, server.log()


def test_the_page_needs_the_token(server: Server, browser: Any) -> None:
    browser.get(server.base + "/")
    assert "token" in browser.find_element(By.TAG_NAME, "body").text
    browser.get(server.url.replace("token=", "token=wrong"))
    with pytest.raises(WebDriverException):
        browser.find_element(By.ID, "toggle")
