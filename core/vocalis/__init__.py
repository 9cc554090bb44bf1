"""Vocalis: real-time voice AI agents.

Public names are imported lazily so that ``import vocalis`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loguru import logger as _logger

__version__ = "0.1.0"

# Quiet as a library (loguru's advice): the application enables these logs,
# the CLI through vocalis.log.configure_logging, others through enable_logging.
_logger.disable("vocalis")

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
    from vocalis.audio import AudioFormatError as AudioFormatError
    from vocalis.audio import AudioFrame as AudioFrame
    from vocalis.chat import ChatContext as ChatContext
    from vocalis.chat import ChatMessage as ChatMessage
    from vocalis.chat import ChatRole as ChatRole
    from vocalis.event_types import (
        AgentHandoffEvent as AgentHandoffEvent,
    )
    from vocalis.event_types import (
        AgentStateChangedEvent as AgentStateChangedEvent,
    )
    from vocalis.event_types import (
        AgentTurnEvent as AgentTurnEvent,
    )
    from vocalis.event_types import (
        BackchannelEvent as BackchannelEvent,
    )
    from vocalis.event_types import (
        CloseEvent as CloseEvent,
    )
    from vocalis.event_types import (
        EndOfTurnProbabilityEvent as EndOfTurnProbabilityEvent,
    )
    from vocalis.event_types import (
        ErrorEvent as ErrorEvent,
    )
    from vocalis.event_types import (
        FalseInterruptionEvent as FalseInterruptionEvent,
    )
    from vocalis.event_types import (
        FunctionCallEvent as FunctionCallEvent,
    )
    from vocalis.event_types import (
        InterruptionEvent as InterruptionEvent,
    )
    from vocalis.event_types import (
        MetricsCollectedEvent as MetricsCollectedEvent,
    )
    from vocalis.event_types import (
        PreemptiveGenerationEvent as PreemptiveGenerationEvent,
    )
    from vocalis.event_types import (
        SpeechInEvent as SpeechInEvent,
    )
    from vocalis.event_types import (
        SpeechOutEvent as SpeechOutEvent,
    )
    from vocalis.event_types import (
        UserStateChangedEvent as UserStateChangedEvent,
    )
    from vocalis.event_types import UserTurnEvent as UserTurnEvent
    from vocalis.event_types import WakeUpEvent as WakeUpEvent
    from vocalis.pipeline.cascading import CascadingPipeline as CascadingPipeline
    from vocalis.pipeline.config import (
        EOUConfig as EOUConfig,
    )
    from vocalis.pipeline.config import (
        EOUMode as EOUMode,
    )
    from vocalis.pipeline.config import (
        InterruptConfig as InterruptConfig,
    )
    from vocalis.pipeline.config import (
        InterruptMode as InterruptMode,
    )
    from vocalis.pipeline.config import ProviderTimeouts as ProviderTimeouts
    from vocalis.pipeline.realtime import RealTimePipeline as RealTimePipeline
    from vocalis.plugin.hookspecs import hookimpl as hookimpl
    from vocalis.plugin.hookspecs import hookspec as hookspec
    from vocalis.plugin.manager import make_plugin_manager as make_plugin_manager
    from vocalis.plugin.registry import Registry as Registry
    from vocalis.providers.base import (
        ErrorKind as ErrorKind,
    )
    from vocalis.providers.base import (
        Provider as Provider,
    )
    from vocalis.providers.base import (
        ProviderError as ProviderError,
    )
    from vocalis.providers.base import (
        ProviderKind as ProviderKind,
    )
    from vocalis.providers.fallback import ConnectOptions as ConnectOptions
    from vocalis.providers.fallback import FallbackLLM as FallbackLLM
    from vocalis.providers.fallback import FallbackSTT as FallbackSTT
    from vocalis.providers.fallback import FallbackTTS as FallbackTTS
    from vocalis.session.agent import Agent as Agent
    from vocalis.session.agent_session import AgentSession as AgentSession
    from vocalis.session.background import AudioClip as AudioClip
    from vocalis.session.background import BackgroundAudioConfig as BackgroundAudioConfig
    from vocalis.session.flow import ConversationFlow as ConversationFlow
    from vocalis.session.limits import SessionLimits as SessionLimits
    from vocalis.settings import (
        ProviderSettings as ProviderSettings,
    )
    from vocalis.settings import (
        VocalisSettings as VocalisSettings,
    )
    from vocalis.settings import (
        provider_settings_config as provider_settings_config,
    )
    from vocalis.speech import SpeechHandle as SpeechHandle
    from vocalis.states import AgentState as AgentState
    from vocalis.states import SessionEvent as SessionEvent
    from vocalis.states import UserState as UserState
    from vocalis.tools.function import (
        FunctionTool as FunctionTool,
    )
    from vocalis.tools.function import (
        ToolContext as ToolContext,
    )
    from vocalis.tools.function import (
        ToolError as ToolError,
    )
    from vocalis.tools.function import (
        function_tool as function_tool,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vocalis' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
