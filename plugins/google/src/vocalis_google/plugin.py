"""Entry point of the ``google`` plugin: registers the Gemini LLM and Gemini Live."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vocalis import hookimpl

if TYPE_CHECKING:
    from vocalis.plugin.registry import ProviderRegister


@hookimpl
def vocalis_register_llm(register: ProviderRegister[Any]) -> None:
    """Register :class:`~vocalis_google.llm.GeminiLLM` as ``google`` (alias ``gemini``).

    It is not proposed as the default LLM: it needs an API key and the
    network, while the default should work offline.
    """
    from vocalis_google.llm import GeminiLLM

    register(GeminiLLM, aliases=["gemini"])


@hookimpl
def vocalis_register_realtime(register: ProviderRegister[Any]) -> None:
    """Register :class:`~vocalis_google.live.GeminiLive` as ``google`` (aliases ``gemini``, ``gemini-live``)."""
    from vocalis_google.live import GeminiLive

    register(GeminiLive, aliases=["gemini", "gemini-live"])
