"""End-of-utterance (turn detection) contract."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from vocalis.providers.base import Provider, ProviderKind

if TYPE_CHECKING:
    from vocalis.audio import AudioFrame
    from vocalis.chat import ChatContext


class EOU(Provider):
    """Base class of turn detectors.

    Attributes:
        uses_audio: The model reads the user's audio (else only the text).
        sample_rate: The audio rate it wants when it uses audio.
    """

    kind: ClassVar[ProviderKind] = ProviderKind.EOU
    uses_audio: ClassVar[bool] = False
    sample_rate: ClassVar[int] = 16_000

    async def predict(self, chat_ctx: ChatContext, *, audio: AudioFrame | None = None) -> float:
        """Probability (0..1) that the user has finished their turn.

        Args:
            chat_ctx: The conversation including the user's pending text as
                the last user message.
            audio: The user's latest speech, for audio models.
        """
        raise NotImplementedError
