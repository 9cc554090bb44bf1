"""The turn detector's side of a turn: the audio it hears and its prediction.

An audio turn detector judges the user's last words from their sound, so
the controller keeps the audio of the pending turn (up to the detector's
window, with half a second before the VAD's start: the VAD fires only after
some speech, and the detector should hear the onset). The prediction is
bounded in time and its value checked, like every provider output.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from vocalis.audio import AudioFrame, concat
from vocalis.providers.base import ProviderError
from vocalis.providers.guards import check_probability

if TYPE_CHECKING:
    from vocalis.chat import ChatContext
    from vocalis.providers.eou import EOU

_MAX_TURN_AUDIO = 8.0  # seconds kept for audio turn detectors (their window)
_PREROLL = 0.5  # seconds before the VAD start kept for them


class TurnAudio:
    """The user audio of the pending turn, for an audio turn detector."""

    def __init__(self) -> None:
        self._frames: list[AudioFrame] = []
        self._seconds = 0.0
        self._preroll: deque[AudioFrame] = deque()
        self._preroll_seconds = 0.0

    def __bool__(self) -> bool:
        return bool(self._frames)

    def push(self, frame: AudioFrame, *, in_turn: bool) -> None:
        """Keep ``frame``: in the turn's audio while ``in_turn`` (the user
        speaks or their words await the end of turn), else as preroll."""
        if not in_turn:
            self._preroll.append(frame)
            self._preroll_seconds += frame.duration
            while self._preroll_seconds - self._preroll[0].duration >= _PREROLL:
                self._preroll_seconds -= self._preroll.popleft().duration
            return
        if self._preroll:
            self._frames.extend(self._preroll)
            self._seconds += self._preroll_seconds
            self._preroll.clear()
            self._preroll_seconds = 0.0
        self._frames.append(frame)
        self._seconds += frame.duration
        while self._seconds > _MAX_TURN_AUDIO and len(self._frames) > 1:
            self._seconds -= self._frames.pop(0).duration

    def audio(self) -> AudioFrame | None:
        """The turn's audio as one frame (None before any)."""
        return concat(self._frames)

    def clear(self) -> None:
        """The turn is over: forget its audio (the preroll stays)."""
        self._frames.clear()
        self._seconds = 0.0


async def predict(detector: EOU, context: ChatContext, audio: AudioFrame | None, limit: float | None) -> float:
    """The detector's end-of-turn probability within ``limit`` seconds, checked.

    Raises:
        ProviderError: The detector timed out, or its value is no probability.
    """
    label = detector.label
    if limit is None:
        value = await detector.predict(context, audio=audio)
    else:
        try:
            async with asyncio.timeout(limit) as timer:
                value = await detector.predict(context, audio=audio)
        except TimeoutError:
            if not timer.expired():
                raise
            message = f"timed out after {limit:g} s predicting the end of turn"
            raise ProviderError(message, provider=label) from None
    return check_probability(label, value)
