"""The shared LLM conformance suite, run against GeminiLLM and the local REST server.

With no reply scripted the server streams a canned answer to any prompt,
which is all these checks need: they test the provider's plumbing. The
tool-history check reads the request body the server received.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from gemini_rest_server import API_KEY, RestServer

from vocalis.testing.conformance import LLMConformance
from vocalis_google import GeminiLLM


class TestGeminiLLMConformance(LLMConformance):
    scripted_model = True  # canned replies: the request body is the evidence

    @pytest.fixture
    def provider(self, rest: RestServer) -> GeminiLLM:
        # Each check runs its own event loop (asyncio.run): the provider makes
        # a session per loop, closed when that loop shuts down.
        return GeminiLLM(api_key=API_KEY, base_url=rest.url, max_retries=0, _env_file=None)

    @pytest.fixture
    def model_input(self, rest: RestServer) -> Callable[[], str]:
        return lambda: json.dumps(rest.requests[-1].body)
