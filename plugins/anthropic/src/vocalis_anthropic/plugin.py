"""Entry point of the ``anthropic`` plugin: registers the Anthropic LLM."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vocalis import hookimpl
from vocalis_anthropic.llm import AnthropicLLM

if TYPE_CHECKING:
    from vocalis.plugin.registry import ProviderRegister


@hookimpl
def vocalis_register_llm(register: ProviderRegister[AnthropicLLM]) -> None:
    """Register :class:`AnthropicLLM` as ``anthropic``.

    It is not proposed as the default LLM: it needs an API key and the
    network, while the default should work offline.
    """
    register(AnthropicLLM)
