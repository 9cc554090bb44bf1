"""What the session needs from a pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vocalis.audio import AudioFrame
from vocalis.providers.base import Provider

if TYPE_CHECKING:
    from vocalis.pipeline.ports import SessionPort
    from vocalis.speech import SpeechHandle

# Attributes that name a pipeline's providers, in the order metrics list them.
_COMPONENTS = ("stt", "llm", "tts", "vad", "turn_detector", "model")


class Pipeline:
    """Base class of :class:`CascadingPipeline` and :class:`RealTimePipeline`.

    A pipeline serves one session: :meth:`attach` binds it and opens the
    per-session streams; the providers themselves may be shared. It sees the
    session only through a :class:`~vocalis.pipeline.ports.SessionPort`.
    """

    def __init__(self) -> None:
        self.session: SessionPort | None = None

    async def attach(self, session: SessionPort) -> None:
        """Bind to ``session`` (the session's port) and open per-session streams."""
        if self.session is not None and self.session is not session:
            raise RuntimeError("a pipeline serves one session; create one per session")
        self.session = session

    def providers(self) -> dict[str, Provider]:
        """The providers the pipeline runs on, by component, for metrics and traces.

        By default the attributes named ``stt``, ``llm``, ``tts``, ``vad``,
        ``turn_detector`` and ``model`` that hold a provider.
        """
        found: dict[str, Provider] = {}
        for component in _COMPONENTS:
            provider = getattr(self, component, None)
            if isinstance(provider, Provider):
                found[component] = provider
        return found

    @property
    def turn_pending(self) -> bool:
        """Whether a user turn is in progress: speech, owed transcripts or an
        end-of-turn decision (False for pipelines that do not track it)."""
        return False

    def push_audio(self, frame: AudioFrame) -> None:
        """Take one frame of user audio."""
        raise NotImplementedError

    async def speak(self, handle: SpeechHandle, text: str) -> None:
        """Speak fixed text (``session.say``)."""
        raise NotImplementedError

    async def generate_reply(
        self,
        handle: SpeechHandle,
        *,
        instructions: str | None = None,
        user_text: str | None = None,
    ) -> None:
        """Answer with the model: after a user turn, or on ``session.reply``."""
        raise NotImplementedError

    async def on_agent_changed(self) -> None:
        """The session handed over to another agent (update instructions, tools)."""

    async def aclose(self) -> None:
        """Close per-session streams and providers the pipeline created."""
