"""ConversationFlow: hooks into every user turn of a cascading pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vocalis.session.agent import Agent


class ConversationFlow:
    """Subclass to observe or rewrite each turn.

    ``on_turn_start`` runs when the user's turn is committed, ``run`` produces
    the text that is spoken (by default the LLM's stream, via
    :meth:`process_with_llm`), and ``on_turn_end`` runs after the reply.

    Example::

        class Polite(ConversationFlow):
            async def run(self, transcript):
                yield "Thanks for asking. "
                async for text in self.process_with_llm():
                    yield text

    Args:
        agent: The agent the flow belongs to (set by the session if omitted).
    """

    def __init__(self, agent: Agent | None = None) -> None:
        self.agent = agent
        self._llm_stream: Callable[[], AsyncIterator[str]] | None = None

    async def on_turn_start(self, transcript: str) -> None:
        """The user's turn was committed with ``transcript``."""

    async def on_turn_end(self) -> None:
        """The agent's reply for the turn finished (or was interrupted)."""

    async def run(self, transcript: str) -> AsyncIterator[str]:
        """Yield the text to speak for this turn.

        Override to rewrite, filter or replace the LLM's text. Tool calls
        made by the LLM inside :meth:`process_with_llm` are executed as usual.
        """
        async for text in self.process_with_llm():
            yield text

    async def process_with_llm(self) -> AsyncIterator[str]:
        """Stream the LLM's reply text for the current turn."""
        if self._llm_stream is None:
            raise RuntimeError("process_with_llm() is only available inside run()")
        async for text in self._llm_stream():
            yield text

    async def cleanup(self) -> None:
        """Called once when the session closes."""
