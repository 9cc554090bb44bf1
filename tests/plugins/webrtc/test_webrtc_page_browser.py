"""Screenshots of the page's new states in a real Chromium.

Reuses test_webrtc_browser's harness (``vocalis serve`` with the offline stack
and Chromium with a fake microphone playing utt01). Screenshots go to
``tmp_path`` as artifacts for a human to look at; the assertions are on the DOM
at the moment of each screenshot (visibility, text, bounding rectangles),
because pixels are brittle.

Two tests: one renders a scripted conversation through ``window.vocalisRender``
(every state, deterministic, including an interrupted reply, which the real
stack does not produce on demand), and one holds a real conversation and
catches the live states as they happen.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from test_webrtc_browser import Server, launch_chromium

pytestmark = pytest.mark.slow

DEADLINE = 60.0  # seconds for the real conversation
WIDTH, HEIGHT = 600, 700


@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    served = Server(tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    driver = launch_chromium(tmp_path, f"--window-size={WIDTH},{HEIGHT}")
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: Any, tmp_path: Path, name: str) -> None:
    """Save a screenshot artifact (kept in tmp_path for a human to look at)."""
    png = driver.get_screenshot_as_png()
    assert png.startswith(b"\x89PNG")
    (tmp_path / f"{name}.png").write_bytes(png)


def render(driver: Any, *messages: dict[str, Any]) -> None:
    for message in messages:
        driver.execute_script("window.vocalisRender(arguments[0])", message)


def last(driver: Any, role: str) -> Any:
    return driver.find_elements(By.CSS_SELECTOR, f'#transcript li[data-role="{role}"]')[-1]


def rect(driver: Any, element: Any) -> dict[str, float]:
    box: dict[str, float] = driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", element)
    return box


def assert_header_stays(driver: Any) -> None:
    """Fill the transcript past the viewport, scroll to the end: Start/Stop is still in view."""
    driver.execute_script(
        """
        const t = document.getElementById("transcript");
        for (let i = 0; i < 40; i++) {
          const li = document.createElement("li");
          li.dataset.role = "filler";
          li.textContent = "filler line " + i;
          t.appendChild(li);
        }
        window.scrollTo(0, document.body.scrollHeight);
        """
    )
    assert driver.execute_script("return window.scrollY") > HEIGHT, "the page must have scrolled"
    button = driver.find_element(By.ID, "toggle")
    box = rect(driver, button)
    viewport = driver.execute_script("return window.innerHeight")
    assert button.is_displayed()
    assert 0 <= box["top"] and box["bottom"] <= viewport, box
    # And it is the top element there: clickable, not covered by the transcript.
    centre = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === arguments[0];",
        button,
    )
    assert centre


def test_the_page_renders_every_state_of_a_turn(page_server: Server, chromium: Any, tmp_path: Path) -> None:
    driver = chromium
    driver.get(page_server.url)
    shot(driver, tmp_path, "0-start")

    render(driver, {"type": "user_state_changed", "state": "speaking", "old_state": "idle"})
    user = last(driver, "user")
    assert user.is_displayed() and "speaking…" in user.text
    assert driver.find_element(By.ID, "user-state").text == "speaking"

    # The user stops: recognition runs, and the page says so.
    render(driver, {"type": "user_state_changed", "state": "idle", "old_state": "speaking"})
    shot(driver, tmp_path, "1-recognising")
    status = user.find_element(By.CSS_SELECTOR, ".status")
    assert status.is_displayed() and status.text == "recognising…"
    assert user.get_attribute("data-status") == "recognising"

    render(driver, {"type": "on_speech_in", "text": "What's the weather in Boston?", "is_final": True})
    assert not status.is_displayed()
    render(driver, {"type": "user_turn", "text": "What's the weather in Boston?"})
    assert user.get_attribute("data-final") == "true"

    render(driver, {"type": "agent_state_changed", "state": "thinking", "old_state": "idle"})
    shot(driver, tmp_path, "2-thinking")
    agent = last(driver, "agent")
    assert agent.is_displayed() and "thinking…" in agent.text

    render(
        driver,
        {"type": "agent_state_changed", "state": "speaking", "old_state": "thinking"},
        {"type": "on_speech_out", "text": "It is sunny in Boston, with a high of", "speech_id": "s1"},
        {"type": "agent_turn", "text": "It is sunny in Boston, with a", "interrupted": True, "speech_id": "s1"},
        {
            "type": "metrics_collected",
            "turn": 1,
            "e2e_latency": 1.234,
            "metrics": {
                "turn": 1,
                "speech_id": "s1",
                "stt_latency": 0.42,
                "eou_delay": 0.51,
                "llm_ttft": 0.3,
                "tts_ttfb": 0.12,
                "e2e_latency": 1.234,
            },
        },
    )
    shot(driver, tmp_path, "3-interrupted-with-latency")
    assert "thinking…" not in agent.text
    badge = agent.find_element(By.CSS_SELECTOR, ".badge")
    assert badge.is_displayed() and badge.text.endswith("interrupted")
    assert agent.get_attribute("data-interrupted") == "true"
    latency = agent.find_element(By.CSS_SELECTOR, '[data-role="latency"]')
    assert latency.is_displayed()
    stages = {s.get_attribute("data-stage"): s.text for s in latency.find_elements(By.CSS_SELECTOR, ".stage")}
    assert stages == {
        "stt": "stt 420 ms",
        "eou": "eou 510 ms",
        "llm": "llm 300 ms",
        "tts": "tts 120 ms",
        "e2e": "e2e 1.23 s",
    }
    assert rect(driver, latency)["top"] >= rect(driver, agent.find_element(By.CSS_SELECTOR, ".text"))["bottom"]

    # The sides differ by label and alignment, not only by colour.
    assert user.find_element(By.CSS_SELECTOR, ".who .name").text.upper() == "YOU"
    assert agent.find_element(By.CSS_SELECTOR, ".who .name").text.upper() == "AGENT"
    icons = [line.find_element(By.CSS_SELECTOR, ".who .icon").text for line in (user, agent)]
    assert icons[0] and icons[1] and icons[0] != icons[1]
    u, a = rect(driver, user), rect(driver, agent)
    assert u["right"] > a["right"] and u["left"] > a["left"], (u, a)

    # An agent that thinks and then says nothing leaves no empty bubble.
    count = len(driver.find_elements(By.CSS_SELECTOR, '#transcript li[data-role="agent"]'))
    render(
        driver,
        {"type": "agent_state_changed", "state": "thinking", "old_state": "listening"},
        {"type": "agent_state_changed", "state": "listening", "old_state": "thinking"},
    )
    assert len(driver.find_elements(By.CSS_SELECTOR, '#transcript li[data-role="agent"]')) == count

    assert_header_stays(driver)
    shot(driver, tmp_path, "4-scrolled")


SNAPSHOT = """
const level = document.getElementById("mic-level");
const pending = document.querySelector('#transcript li[data-role="user"][data-status="recognising"] .status');
const visible = (el) => !!el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
const agents = [...document.querySelectorAll('#transcript li[data-role="agent"]')];
const withLatency = agents.find((li) => li.querySelector('[data-role="latency"] [data-stage="e2e"]'));
return {
  level: Number(level.value),
  recognising: visible(pending) ? pending.textContent : null,
  agentState: document.getElementById("agent-state").textContent,
  latency: withLatency ? withLatency.querySelector('[data-role="latency"]').textContent : null,
  agentText: withLatency ? withLatency.querySelector(".text").textContent : null,
};
"""


def test_a_real_conversation_shows_the_live_states(page_server: Server, chromium: Any, tmp_path: Path) -> None:
    driver = chromium
    driver.get(page_server.url)
    driver.find_element(By.ID, "toggle").click()

    levels: list[float] = []
    recognising: dict[str, Any] | None = None
    done: dict[str, Any] | None = None
    seen: dict[str, Any] = {}
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        seen = driver.execute_script(SNAPSHOT)
        levels.append(seen["level"])
        if recognising is None and seen["recognising"]:
            recognising = seen  # the DOM as it was at this moment
            shot(driver, tmp_path, "live-1-recognising")
        if seen["latency"]:
            done = seen
            shot(driver, tmp_path, "live-2-reply-with-latency")
            break
        time.sleep(0.1)  # polling the page, not synchronising
    else:
        raise AssertionError(f"no reply with latency within {DEADLINE:.0f} s: {seen}\n{page_server.log()}")

    assert recognising is not None, "the 'recognising…' bubble never showed between speech end and transcript"
    assert recognising["recognising"] == "recognising…"
    assert done["agentText"].strip()
    assert "e2e" in done["latency"] and "stt" in done["latency"]
    # The meter follows the fake microphone: silence, then speech.
    assert max(levels) > 0.3, levels
    assert min(levels) < max(levels) - 0.2, levels

    # The user's line ends up final, under a "You" label.
    user = driver.find_elements(By.CSS_SELECTOR, '#transcript li[data-role="user"]')[0]
    assert "weather" in user.text.lower()
    assert user.find_element(By.CSS_SELECTOR, ".who .name").text.upper() == "YOU"
    assert user.get_attribute("data-final") == "true"

    assert_header_stays(driver)
    shot(driver, tmp_path, "live-3-scrolled")
    assert driver.find_element(By.ID, "toggle").text == "Stop"
    driver.find_element(By.ID, "toggle").click()
    assert driver.find_element(By.ID, "toggle").text == "Start"
    assert float(driver.find_element(By.ID, "mic-level").get_attribute("value")) == 0
