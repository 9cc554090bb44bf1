"""No log shows the key: websockets logs each handshake header at DEBUG, aiohttp
logs its requests and loguru logs the providers' own lines.

A fresh interpreter with ``logging.basicConfig(level=DEBUG)`` (and loguru's
default stderr sink) makes one LLM request and one Live connect against the
protocol servers, with the right key and with a wrong one; everything it
writes is searched for the keys.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import pytest
from gemini_live_server import API_KEY as LIVE_KEY
from gemini_live_server import LiveServer
from gemini_rest_server import API_KEY as REST_KEY
from gemini_rest_server import RestServer

# Not shaped like a Google key, so only the providers' own redaction can hide it.
WRONG_KEY = "wrong-key-not-prefixed-7f3c9e1d2b"

SCRIPT = """
import asyncio, logging, sys

logging.basicConfig(level=logging.DEBUG)

from vocalis.chat import ChatContext, ChatRole
from vocalis.providers.base import ProviderError
from vocalis_google import GeminiLive, GeminiLLM


async def main(rest_url: str, live_url: str, wrong_key: str) -> None:
    ctx = ChatContext()
    ctx.add_message(ChatRole.USER, "Hello?")
    for key in (None, wrong_key):  # None: the key of the environment
        llm = GeminiLLM(base_url=rest_url, max_retries=0, api_key=key)
        try:
            text = "".join([chunk.text async for chunk in llm.chat(ctx)])
            print("llm answered", bool(text))
        except ProviderError as error:
            logging.getLogger("app").error("llm failed: %s", error)
            print("llm refused", error.kind.name)
        finally:
            await llm.aclose()
        live = GeminiLive(base_url=live_url, api_key=key)
        try:
            session = await live.connect(instructions="Be brief.")
            await session.aclose()
            print("live connected")
        except ProviderError as error:
            logging.getLogger("app").error("live failed: %s", error)
            print("live refused", error.kind.name)
        finally:
            await live.aclose()


asyncio.run(main(*sys.argv[1:]))
"""


async def test_debug_logs_never_show_the_key(rest: RestServer, live: LiveServer, tmp_path: Path) -> None:
    script = tmp_path / "talk.py"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {name: value for name, value in os.environ.items() if "API_KEY" not in name}
    env |= {"VOCALIS_LLM_GOOGLE_API_KEY": REST_KEY, "VOCALIS_REALTIME_GOOGLE_API_KEY": LIVE_KEY}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        rest.url,
        live.url,
        WRONG_KEY,
        cwd=tmp_path,  # no .env but ours (none)
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    stdout, logs = out.decode(), err.decode()
    assert process.returncode == 0, logs[-3000:]
    assert stdout.split("\n")[:4] == ["llm answered True", "live connected", "llm refused AUTH", "live refused AUTH"]
    # The logs are there: websockets' handshake headers, the providers' own lines.
    assert "x-goog-api-key" in logs.lower() and "websockets.client" in logs and "realtime:google" in logs
    for key in (REST_KEY, LIVE_KEY, WRONG_KEY):
        assert key not in logs and key[-12:] not in logs, f"a key shows in the logs: {key[:8]}..."
    assert [r.headers["x-goog-api-key"] for r in rest.requests] == [REST_KEY, WRONG_KEY]
    assert [h["x-goog-api-key"] for _, h in live.handshakes] == [LIVE_KEY, WRONG_KEY]


def test_the_websockets_logger_redacts_headers_bytes_and_keeps_numbers(caplog: pytest.LogCaptureFixture) -> None:
    from websockets.datastructures import Headers

    from vocalis.providers.redact import RedactingLogger

    log = RedactingLogger("websockets.client", [WRONG_KEY])
    with caplog.at_level(logging.DEBUG, logger="websockets.client"):
        log.debug("> %s: %s", "x-goog-api-key", WRONG_KEY)
        log.debug("> headers %s", Headers({"x-goog-api-key": WRONG_KEY}))
        log.debug("> TEXT %r [%d bytes]", WRONG_KEY.encode(), 42)
        log.debug(f"! failed with key {WRONG_KEY}")
    assert len(caplog.records) == 4 and "[42 bytes]" in caplog.text and "x-goog-api-key" in caplog.text
    assert WRONG_KEY not in caplog.text
