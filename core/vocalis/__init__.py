"""Vocalis: real-time voice AI agents.

Public names are imported lazily so that ``import vocalis`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Agent": "vocalis.session.agent",
    "AgentSession": "vocalis.session.agent_session",
    "AgentState": "vocalis.states",
    "UserState": "vocalis.states",
    "SessionEvent": "vocalis.states",
    "AgentHandoffEvent": "vocalis.event_types",
    "AgentStateChangedEvent": "vocalis.event_types",
    "AgentTurnEvent": "vocalis.event_types",
    "BackchannelEvent": "vocalis.event_types",
    "CloseEvent": "vocalis.event_types",
    "EndOfTurnProbabilityEvent": "vocalis.event_types",
    "ErrorEvent": "vocalis.event_types",
    "FalseInterruptionEvent": "vocalis.event_types",
    "FunctionCallEvent": "vocalis.event_types",
    "InterruptionEvent": "vocalis.event_types",
    "MetricsCollectedEvent": "vocalis.event_types",
    "PreemptiveGenerationEvent": "vocalis.event_types",
    "SpeechInEvent": "vocalis.event_types",
    "SpeechOutEvent": "vocalis.event_types",
    "UserStateChangedEvent": "vocalis.event_types",
    "UserTurnEvent": "vocalis.event_types",
    "WakeUpEvent": "vocalis.event_types",
    "CascadingPipeline": "vocalis.pipeline.cascading",
    "RealTimePipeline": "vocalis.pipeline.realtime",
    "ConversationFlow": "vocalis.session.flow",
    "SpeechHandle": "vocalis.speech",
    "EOUConfig": "vocalis.pipeline.config",
    "EOUMode": "vocalis.pipeline.config",
    "InterruptConfig": "vocalis.pipeline.config",
    "InterruptMode": "vocalis.pipeline.config",
    "ProviderTimeouts": "vocalis.pipeline.config",
    "SessionLimits": "vocalis.session.limits",
    "function_tool": "vocalis.tools.function",
    "FunctionTool": "vocalis.tools.function",
    "ToolContext": "vocalis.tools.function",
    "ToolError": "vocalis.tools.function",
    "ChatContext": "vocalis.chat",
    "ChatMessage": "vocalis.chat",
    "ChatRole": "vocalis.chat",
    "AudioFrame": "vocalis.audio",
    "BackgroundAudioConfig": "vocalis.session.background",
    "ConnectOptions": "vocalis.providers.fallback",
    "FallbackLLM": "vocalis.providers.fallback",
    "FallbackSTT": "vocalis.providers.fallback",
    "FallbackTTS": "vocalis.providers.fallback",
    "AudioClip": "vocalis.session.background",
    "AudioFormatError": "vocalis.audio",
    "hookimpl": "vocalis.plugin.hookspecs",
    "hookspec": "vocalis.plugin.hookspecs",
    "make_plugin_manager": "vocalis.plugin.manager",
    "Registry": "vocalis.plugin.registry",
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
    from vocalis.session.agent import Agent as Agent
    from vocalis.audio import AudioFormatError as AudioFormatError, AudioFrame as AudioFrame
    from vocalis.session.background import AudioClip as AudioClip, BackgroundAudioConfig as BackgroundAudioConfig
    from vocalis.providers.fallback import ConnectOptions as ConnectOptions, FallbackLLM as FallbackLLM
    from vocalis.providers.fallback import FallbackSTT as FallbackSTT, FallbackTTS as FallbackTTS
    from vocalis.chat import ChatContext as ChatContext, ChatMessage as ChatMessage, ChatRole as ChatRole
    from vocalis.session.flow import ConversationFlow as ConversationFlow
    from vocalis.pipeline.cascading import CascadingPipeline as CascadingPipeline
    from vocalis.pipeline.realtime import RealTimePipeline as RealTimePipeline
    from vocalis.session.agent_session import AgentSession as AgentSession
    from vocalis.states import AgentState as AgentState, SessionEvent as SessionEvent, UserState as UserState
    from vocalis.event_types import AgentHandoffEvent as AgentHandoffEvent, AgentStateChangedEvent as AgentStateChangedEvent, AgentTurnEvent as AgentTurnEvent
    from vocalis.event_types import BackchannelEvent as BackchannelEvent, CloseEvent as CloseEvent, EndOfTurnProbabilityEvent as EndOfTurnProbabilityEvent
    from vocalis.event_types import ErrorEvent as ErrorEvent, FalseInterruptionEvent as FalseInterruptionEvent, FunctionCallEvent as FunctionCallEvent
    from vocalis.event_types import InterruptionEvent as InterruptionEvent, MetricsCollectedEvent as MetricsCollectedEvent, PreemptiveGenerationEvent as PreemptiveGenerationEvent
    from vocalis.event_types import SpeechInEvent as SpeechInEvent, SpeechOutEvent as SpeechOutEvent, UserStateChangedEvent as UserStateChangedEvent
    from vocalis.event_types import UserTurnEvent as UserTurnEvent, WakeUpEvent as WakeUpEvent
    from vocalis.speech import SpeechHandle as SpeechHandle
    from vocalis.tools.function import FunctionTool as FunctionTool, ToolContext as ToolContext, ToolError as ToolError, function_tool as function_tool
    from vocalis.pipeline.config import EOUConfig as EOUConfig, EOUMode as EOUMode, InterruptConfig as InterruptConfig, InterruptMode as InterruptMode
    from vocalis.pipeline.config import ProviderTimeouts as ProviderTimeouts
    from vocalis.session.limits import SessionLimits as SessionLimits
    from vocalis.plugin.hookspecs import hookimpl as hookimpl, hookspec as hookspec
    from vocalis.plugin.manager import make_plugin_manager as make_plugin_manager
    from vocalis.providers.base import ErrorKind as ErrorKind, Provider as Provider, ProviderError as ProviderError, ProviderKind as ProviderKind
    from vocalis.plugin.registry import Registry as Registry
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
