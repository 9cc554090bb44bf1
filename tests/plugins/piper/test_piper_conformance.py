"""The core's TTS conformance suite against PiperTTS."""

from __future__ import annotations

import pytest

from vocalis.testing.conformance import TTSConformance
from vocalis_piper import PiperTTS


class TestPiperConformance(TTSConformance):
    # A classmethod: pytest deprecates class-scoped fixtures on instances.
    @pytest.fixture(scope="class")
    @classmethod
    def provider(cls) -> PiperTTS:
        return PiperTTS()
