"""The shared LLM conformance suite, run against the llamacpp provider."""

from __future__ import annotations

import pytest
from vocalis.testing.conformance import LLMConformance
from vocalis_llamacpp import LlamaCppLLM

pytestmark = pytest.mark.slow


class TestLlamaCppConformance(LLMConformance):
    @pytest.fixture
    def provider(self) -> LlamaCppLLM:
        # A new instance per test is cheap: they all share one loaded model.
        return LlamaCppLLM(seed=11, max_tokens=64, _env_file=None)
