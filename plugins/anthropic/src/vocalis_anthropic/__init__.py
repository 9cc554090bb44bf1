"""Claude for Vocalis: an LLM provider over the Anthropic Messages API.

Replies are streamed with the official ``anthropic`` SDK: text as it is
generated, tool calls as soon as each one is complete. Importing this package
opens no connection; the HTTP client is made on the first chat.
"""

from __future__ import annotations

from vocalis.log import quiet_library
from vocalis_anthropic.llm import AnthropicLLM

__all__ = ["AnthropicLLM"]

# Quiet as a library: the application (or the vocalis CLI) enables this package's log.
quiet_library(__name__)
