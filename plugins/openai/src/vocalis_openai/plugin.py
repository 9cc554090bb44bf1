"""Entry point of the ``openai`` plugin: registers its LLM, STT, TTS and realtime providers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vocalis import hookimpl

if TYPE_CHECKING:
    from vocalis.plugin.registry import ProviderRegister


@hookimpl
def vocalis_register_llm(register: ProviderRegister[Any]) -> None:
    """Register :class:`~vocalis_openai.llm.OpenAILLM` as ``openai``."""
    from vocalis_openai.llm import OpenAILLM

    register(OpenAILLM)


@hookimpl
def vocalis_register_stt(register: ProviderRegister[Any]) -> None:
    """Register :class:`~vocalis_openai.stt.OpenAISTT` as ``openai``."""
    from vocalis_openai.stt import OpenAISTT

    register(OpenAISTT)


@hookimpl
def vocalis_register_tts(register: ProviderRegister[Any]) -> None:
    """Register :class:`~vocalis_openai.tts.OpenAITTS` as ``openai``."""
    from vocalis_openai.tts import OpenAITTS

    register(OpenAITTS)


@hookimpl
def vocalis_register_realtime(register: ProviderRegister[Any]) -> None:
    """Register :class:`~vocalis_openai.realtime.OpenAIRealtime` as ``openai``."""
    from vocalis_openai.realtime import OpenAIRealtime

    register(OpenAIRealtime)
