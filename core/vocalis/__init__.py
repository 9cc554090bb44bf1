"""Vocalis: real-time voice AI agents.

Public names are imported lazily so that ``import vocalis`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Agent": "vocalis.agent",
    "AgentSession": "vocalis.session",
    "AgentState": "vocalis.states",
    "UserState": "vocalis.states",
    "CascadingPipeline": "vocalis.pipeline.cascading",
    "RealTimePipeline": "vocalis.pipeline.realtime",
    "ConversationFlow": "vocalis.flow",
    "SpeechHandle": "vocalis.speech",
    "EOUConfig": "vocalis.turn",
    "EOUMode": "vocalis.turn",
    "InterruptConfig": "vocalis.turn",
    "InterruptMode": "vocalis.turn",
    "ProviderTimeouts": "vocalis.turn",
    "SessionLimits": "vocalis.limits",
    "function_tool": "vocalis.tools",
    "FunctionTool": "vocalis.tools",
    "ToolContext": "vocalis.tools",
    "ToolError": "vocalis.tools",
    "ChatContext": "vocalis.chat",
    "ChatMessage": "vocalis.chat",
    "ChatRole": "vocalis.chat",
    "AudioFrame": "vocalis.audio",
    "BackgroundAudioConfig": "vocalis.background",
    "ConnectOptions": "vocalis.fallback",
    "FallbackLLM": "vocalis.fallback",
    "FallbackSTT": "vocalis.fallback",
    "FallbackTTS": "vocalis.fallback",
    "AudioClip": "vocalis.background",
    "AudioFormatError": "vocalis.audio",
    "hookimpl": "vocalis.hookspecs",
    "hookspec": "vocalis.hookspecs",
    "make_plugin_manager": "vocalis.plugins",
    "Registry": "vocalis.registry",
    "ErrorKind": "vocalis.providers.base",
    "ProviderKind": "vocalis.providers.base",
    "Provider": "vocalis.providers.base",
    "ProviderError": "vocalis.providers.base",
    "ProviderSettings": "vocalis.settings",
    "VocalisSettings": "vocalis.settings",
    "provider_settings_config": "vocalis.settings",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from vocalis.agent import Agent as Agent
    from vocalis.audio import AudioFormatError as AudioFormatError, AudioFrame as AudioFrame
    from vocalis.background import AudioClip as AudioClip, BackgroundAudioConfig as BackgroundAudioConfig
    from vocalis.fallback import ConnectOptions as ConnectOptions, FallbackLLM as FallbackLLM
    from vocalis.fallback import FallbackSTT as FallbackSTT, FallbackTTS as FallbackTTS
    from vocalis.chat import ChatContext as ChatContext, ChatMessage as ChatMessage, ChatRole as ChatRole
    from vocalis.flow import ConversationFlow as ConversationFlow
    from vocalis.pipeline.cascading import CascadingPipeline as CascadingPipeline
    from vocalis.pipeline.realtime import RealTimePipeline as RealTimePipeline
    from vocalis.session import AgentSession as AgentSession
    from vocalis.states import AgentState as AgentState, UserState as UserState
    from vocalis.speech import SpeechHandle as SpeechHandle
    from vocalis.tools import FunctionTool as FunctionTool, ToolContext as ToolContext, ToolError as ToolError, function_tool as function_tool
    from vocalis.turn import EOUConfig as EOUConfig, EOUMode as EOUMode, InterruptConfig as InterruptConfig, InterruptMode as InterruptMode
    from vocalis.turn import ProviderTimeouts as ProviderTimeouts
    from vocalis.limits import SessionLimits as SessionLimits
    from vocalis.hookspecs import hookimpl as hookimpl, hookspec as hookspec
    from vocalis.plugins import make_plugin_manager as make_plugin_manager
    from vocalis.providers.base import ErrorKind as ErrorKind, Provider as Provider, ProviderError as ProviderError, ProviderKind as ProviderKind
    from vocalis.registry import Registry as Registry
    from vocalis.settings import ProviderSettings as ProviderSettings, VocalisSettings as VocalisSettings, provider_settings_config as provider_settings_config


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vocalis' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
