"""What the session needs from a pipeline."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from vocalis.audio import AudioFrame
from vocalis.providers.base import Provider

if TYPE_CHECKING:
    from vocalis.pipeline.ports import SessionPort
    from vocalis.speech import SpeechHandle

# Attributes that name a pipeline's providers, in the order metrics list them.
_COMPONENTS = ("stt", "llm", "tts", "vad", "turn_detector", "model")


class ProviderClaims:
    """The providers a pipeline runs on, claimed while its session runs.

    A pipeline closes the providers it runs on when its session ends, but a
    provider that another running session's pipeline also uses (one
    instance shared by several pipelines) is left open: the last pipeline
    to release it closes it. So a session's close leaves nothing open,
    whoever made the providers, and sharing a provider stays safe. The
    count lives on each provider (:meth:`Provider.use_started`), not in a
    registry of this module, so nothing here is shared between sessions.
    """

    def __init__(self) -> None:
        self._claimed: list[Provider] = []

    @property
    def claimed(self) -> list[Provider]:
        """The providers claimed and not released yet."""
        return list(self._claimed)

    def claim(self, providers: Iterable[Provider]) -> None:
        """Count this pipeline among the users of each of ``providers`` (once)."""
        for provider in providers:
            if any(provider is p for p in self._claimed):
                continue
            self._claimed.append(provider)
            provider.use_started()

    async def release(self, report: Callable[[Provider, BaseException], None]) -> None:
        """Stop using them; close those no other pipeline uses (a failure goes to ``report``)."""
        claimed, self._claimed = self._claimed, []
        for provider in claimed:
            if not provider.use_ended():
                continue  # another running pipeline still uses it
            try:
                await provider.aclose()
            except Exception as exc:
                report(provider, exc)


class Pipeline:
    """Base class of :class:`CascadingPipeline` and :class:`RealTimePipeline`.

    A pipeline serves one session: :meth:`attach` binds it and opens the
    per-session streams; the providers themselves may be shared
    (:class:`ProviderClaims`: each is closed when the last session running
    on it ends). It sees the session only through a
    :class:`~vocalis.pipeline.ports.SessionPort`.
    """

    def __init__(self) -> None:
        self.session: SessionPort | None = None
        self.claims = ProviderClaims()

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
        """Close per-session streams, and the providers no other running session uses."""
