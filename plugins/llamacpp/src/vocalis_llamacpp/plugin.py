"""Entry point of the ``llamacpp`` plugin: registers the llama.cpp LLM."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vocalis import hookimpl
from vocalis_llamacpp.llm import LlamaCppLLM

if TYPE_CHECKING:
    from vocalis.plugin.registry import ProviderRegister


@hookimpl
def vocalis_register_llm(register: ProviderRegister[LlamaCppLLM]) -> None:
    """Register :class:`LlamaCppLLM` as ``llamacpp``, the default LLM."""
    register(LlamaCppLLM, default=True)
