"""The shared LLM conformance suite, run against AnthropicLLM and the local server.

With no reply scripted the server streams a canned answer to any prompt,
which is all these checks need: they test the provider's plumbing, not what
the model says. The tool-history check reads what the server received.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from anthropic_messages_server import API_KEY, MessagesServer

from vocalis.testing.conformance import LLMConformance
from vocalis_anthropic import AnthropicLLM


class TestAnthropicConformance(LLMConformance):
    scripted_model = True  # canned replies: the request body is the evidence

    @pytest.fixture
    def provider(self, server: MessagesServer) -> AnthropicLLM:
        # Each check runs its own event loop (asyncio.run); the provider makes
        # a fresh client when it finds itself on a new loop.
        return AnthropicLLM(api_key=API_KEY, base_url=server.url, max_retries=0, _env_file=None)

    @pytest.fixture
    def model_input(self, server: MessagesServer) -> Callable[[], str]:
        return lambda: json.dumps(server.requests[-1].body)
