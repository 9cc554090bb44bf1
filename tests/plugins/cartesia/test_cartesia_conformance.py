"""The core's TTS conformance suite against CartesiaTTS talking to the local server.

The suite runs each check in an event loop of its own (``asyncio.run``), so
the server runs in a thread with its own loop. The provider is never closed
by the suite: its WebSocket and HTTP session are closed as each check's loop
shuts down.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cartesia_server import API_KEY, CartesiaServer

from vocalis.testing.conformance import TTSConformance
from vocalis_cartesia import CartesiaTTS


@pytest.fixture(scope="module")
def threaded_server() -> Iterator[CartesiaServer]:
    # Audio paced in chunks, so that closing midway finds more still coming.
    with CartesiaServer(chunk_interval=0.01) as server:
        yield server


class TestCartesiaConformance(TTSConformance):
    @pytest.fixture
    def provider(self, threaded_server: CartesiaServer) -> Iterator[CartesiaTTS]:
        yield CartesiaTTS(api_key=API_KEY, base_url=threaded_server.url, _env_file=None)
        assert threaded_server.violations == [], "malformed requests were sent"
