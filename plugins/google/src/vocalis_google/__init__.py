"""Google Gemini for Vocalis: Gemini Live as a realtime model, and Gemini as a streamed LLM with tools.

Both speak the Gemini API directly (no vendor SDK): :class:`GeminiLLM` over
``streamGenerateContent`` with aiohttp, :class:`GeminiLive` over the Live
API's ``BidiGenerateContent`` WebSocket. Importing this package opens no
connection.
"""

from __future__ import annotations

from vocalis.log import quiet_library
from vocalis_google.live import GeminiLive
from vocalis_google.llm import GeminiLLM

__all__ = ["GeminiLLM", "GeminiLive"]

# Quiet as a library: the application (or the vocalis CLI) enables this package's log.
quiet_library(__name__)
