"""The turn detector (EOU) conformance suite: probabilities in range, bad audio."""

from __future__ import annotations

import math
from typing import Any

import pytest

from vocalis.audio import AudioFrame
from vocalis.chat import ChatContext, ChatRole
from vocalis.providers.base import ProviderError
from vocalis.testing.conformance.base import ProviderConformance
from vocalis.testing.conformance.support import run


class EOUConformance(ProviderConformance):
    """For turn detectors. Audio models also override ``complete_audio``."""

    @pytest.fixture
    def complete_audio(self) -> AudioFrame | None:
        return None

    def test_probability_in_range(self, provider: Any, complete_audio: AudioFrame | None) -> None:
        ctx = ChatContext()
        ctx.add_message(ChatRole.USER, "What time is it?")
        value = run(provider.predict(ctx, audio=complete_audio))
        assert isinstance(value, float) and 0.0 <= value <= 1.0 and not math.isnan(value)

    def test_bad_audio(self, provider: Any) -> None:
        ctx = ChatContext()
        ctx.add_message(ChatRole.USER, "Hello")
        for audio in (None, AudioFrame(b"", 16_000), AudioFrame.silence(0.3, 8_000)):
            try:
                value = run(provider.predict(ctx, audio=audio))
            except ProviderError:
                continue
            assert 0.0 <= value <= 1.0
