"""Graceful drain of a real `vocalis serve` process on SIGTERM.

The server runs in a subprocess with fake providers (a plugin distribution
written to a temporary site folder) and the websocket transports. Two
clients talk to it; then SIGTERM: new sessions are refused (``/healthz``
503, WebSocket close 1013), the running ones may go on talking until
``--drain-timeout``, the one still there is closed (1001, ``shutdown``), every
session's turns and summary are in the ``--metrics`` file, and the process
exits 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from ws_harness import PCMClient

from vocalis.observability.metrics_file import read_metrics

TOKEN = "drain-token-3c9e1a"
DRAIN_TIMEOUT = 3.0

FAKES_PLUGIN = """
from vocalis import hookimpl
from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD

@hookimpl
def vocalis_register_stt(register):
    register(FakeSTT, default=True)

@hookimpl
def vocalis_register_llm(register):
    register(FakeLLM, default=True)

@hookimpl
def vocalis_register_tts(register):
    register(FakeTTS, default=True)

@hookimpl
def vocalis_register_vad(register):
    register(FakeVAD, default=True)
"""


def install_fakes(site: Path) -> None:
    """A plugin distribution as pip leaves it: package, dist-info, entry point."""
    (site / "vocalis_drainfakes").mkdir(parents=True)
    (site / "vocalis_drainfakes" / "__init__.py").write_text("")
    (site / "vocalis_drainfakes" / "plugin.py").write_text(FAKES_PLUGIN)
    info = site / "vocalis_drainfakes-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vocalis-drainfakes\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[vocalis]\ndrainfakes = vocalis_drainfakes.plugin\n")


class Served:
    """The `vocalis serve` subprocess and its address."""

    def __init__(self, process: asyncio.subprocess.Process, base: str, log: Path) -> None:
        self.process = process
        self.base = base
        self.log = log

    def ws(self, **query: str) -> str:
        return self.base.replace("http", "ws", 1) + "/ws?" + "&".join(f"{k}={v}" for k, v in query.items())


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    site = tmp_path / "site"
    install_fakes(site)
    env = {
        **os.environ,  # without VOCALIS_* (the autouse fixture removed them)
        "PYTHONPATH": str(site),
        "PYTHONUNBUFFERED": "1",
        "VOCALIS_PLUGINS": "drainfakes,websocket",
        "VOCALIS_LLM_FAKE_RESPONSES": json.dumps(["Hello from the server."]),
        "VOCALIS_LOG_LEVEL": "INFO",
    }
    log = tmp_path / "serve.log"
    command = [
        sys.executable,
        "-c",
        "from vocalis.cli.main import cli; cli()",
        "serve",
        "--port",
        "0",
        "--token",
        TOKEN,
        "--drain-timeout",
        str(DRAIN_TIMEOUT),
        "--metrics",
        str(tmp_path / "metrics.jsonl"),
    ]
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=stderr
        )
    try:
        assert process.stdout is not None
        base = ""
        while not base:
            line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
            assert line, f"vocalis serve exited early:\n{log.read_text()}"
            if match := re.search(r"Open (http://[\d.]+:\d+)/\?token=", line):
                base = match.group(1)
        yield Served(process, base, log)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def talk(client: PCMClient, text: str) -> None:
    """Say ``text`` and wait until the agent's turn is measured."""
    done = len(client.named("metrics_collected"))
    await client.send_json({"type": "text", "text": text})
    await client.wait_for(lambda: len(client.named("metrics_collected")) > done, timeout=30)


async def test_sigterm_drains_sessions_flushes_metrics_and_exits_0(served: Served, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as http:
        finishing = PCMClient(await http.ws_connect(served.ws(token=TOKEN)))
        lingering = PCMClient(await http.ws_connect(served.ws(token=TOKEN)))
        for client in (finishing, lingering):
            await client.wait_for(lambda c=client: bool(c.named("ready")))
            await talk(client, "hello")
        ids = {c.named("ready")[0]["session_id"] for c in (finishing, lingering)}
        async with http.get(f"{served.base}/healthz") as response:
            assert response.status == 200 and (await response.json())["sessions"] == 2

        served.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # Draining: the health check says so (a load balancer stops sending calls) ...
        while True:
            async with http.get(f"{served.base}/healthz") as response:
                if response.status == 503:
                    assert (await response.json())["accepting"] is False
                    break
            await asyncio.sleep(0.02)
        # ... and a new session is refused with "try again later".
        refused = PCMClient(await http.ws_connect(served.ws(token=TOKEN)))
        assert await refused.wait_closed() == 1013
        assert not refused.named("ready")

        # A running session goes on while the drain lasts, then hangs up by itself.
        await talk(finishing, "one more thing")
        await finishing.send_json({"type": "end"})
        assert await finishing.wait_closed() == 1000
        # The other one is still there at the deadline: closed, told why.
        assert await lingering.wait_closed(timeout=DRAIN_TIMEOUT + 10) == 1001
        assert lingering.named("close")[-1]["reason"] == "shutdown"

        code = await asyncio.wait_for(served.process.wait(), DRAIN_TIMEOUT + 15)
        took = time.monotonic() - signalled
    log = served.log.read_text()
    assert code == 0, log
    assert DRAIN_TIMEOUT - 0.5 < took < DRAIN_TIMEOUT + 15, took
    assert "draining 2 session(s)" in log

    records = read_metrics(tmp_path / "metrics.jsonl")
    by_session = {i: [r for r in records if r.get("session_id") == i] for i in ids}
    finishing_id = finishing.named("ready")[0]["session_id"]
    for session_id, mine in by_session.items():
        turns = 2 if session_id == finishing_id else 1
        assert [r["type"] for r in mine] == ["session"] + ["turn"] * turns + ["summary"], mine
        assert mine[-1]["turns"] == turns
        assert all(r["llm"][0]["provider"] == "llm:fake" for r in mine if r["type"] == "turn")
