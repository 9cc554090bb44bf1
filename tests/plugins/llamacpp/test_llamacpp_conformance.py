"""The shared LLM conformance suite, run against the llamacpp provider."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from vocalis.testing.conformance import LLMConformance
from vocalis_llamacpp import LlamaCppLLM
from vocalis_llamacpp.engine import Engine

pytestmark = pytest.mark.slow


class TestLlamaCppConformance(LLMConformance):
    @pytest.fixture
    def provider(self) -> LlamaCppLLM:
        # A new instance per test is cheap: they all share one loaded model.
        return LlamaCppLLM(seed=11, max_tokens=64, _env_file=None)

    @pytest.fixture
    def model_input(self, monkeypatch: pytest.MonkeyPatch) -> Callable[[], str]:
        """The messages handed to llama.cpp's server, which renders them into the prompt."""
        sent: list[dict[str, Any]] = []
        generate = Engine.generate

        def recording(self: Engine, request: dict[str, Any], *args: Any, **kwargs: Any) -> None:
            sent.append(request)
            generate(self, request, *args, **kwargs)

        monkeypatch.setattr(Engine, "generate", recording)
        return lambda: json.dumps(sent[-1]["messages"])
