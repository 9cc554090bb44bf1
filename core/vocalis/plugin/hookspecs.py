"""The hooks a Vocalis plugin can implement.

A plugin is a module (usually ``vocalis_<name>.plugin``) exposed through the
``vocalis`` entry-point group. It implements one or more of the hooks below,
each of which receives a typed ``register`` object and registers provider
*classes* with it::

    from vocalis import hookimpl

    @hookimpl
    def vocalis_register_stt(register):
        register(MySTT, aliases=["my-stt"])

Hooks are synchronous and called once per plugin manager. They must not do
slow work (load models, open connections): that belongs in the provider's
async methods or its ``prewarm``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from vocalis.plugin.commands import CommandRegister
    from vocalis.plugin.registry import ProviderRegister
    from vocalis.providers.eou import EOU
    from vocalis.providers.llm import LLM
    from vocalis.providers.realtime import RealtimeModel
    from vocalis.providers.session_store import SessionStore
    from vocalis.providers.stt import STT
    from vocalis.providers.tools import ToolSource
    from vocalis.providers.transport import Transport
    from vocalis.providers.tts import TTS
    from vocalis.providers.vad import VAD

PROJECT_NAME = "vocalis"
"""The pluggy project name, also the entry-point group plugins declare."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def vocalis_register_stt(register: ProviderRegister[STT]) -> None:
    """Register speech-to-text provider classes.

    Args:
        register: Call ``register(cls, name=None, aliases=())`` once per
            subclass of :class:`vocalis.providers.stt.STT`.
    """


@hookspec
def vocalis_register_llm(register: ProviderRegister[LLM]) -> None:
    """Register large-language-model provider classes.

    Args:
        register: Call ``register(cls, name=None, aliases=())`` once per
            subclass of :class:`vocalis.providers.llm.LLM`.
    """


@hookspec
def vocalis_register_tts(register: ProviderRegister[TTS]) -> None:
    """Register text-to-speech provider classes.

    Args:
        register: Call ``register(cls, name=None, aliases=())`` once per
            subclass of :class:`vocalis.providers.tts.TTS`.
    """


@hookspec
def vocalis_register_vad(register: ProviderRegister[VAD]) -> None:
    """Register voice-activity-detection provider classes.

    Args:
        register: Call ``register(cls, name=None, aliases=())`` once per
            subclass of :class:`vocalis.providers.vad.VAD`.
    """


@hookspec
def vocalis_register_eou(register: ProviderRegister[EOU]) -> None:
    """Register end-of-utterance (turn detection) provider classes.

    Args:
        register: Call ``register(cls, name=None, aliases=())`` once per
            subclass of :class:`vocalis.providers.eou.EOU`.
    """


@hookspec
def vocalis_register_tools(register: ProviderRegister[ToolSource]) -> None:
    """Register tool-source classes (MCP servers and other tool providers).

    Args:
        register: Call ``register(cls, name=None, aliases=())`` once per
            subclass of :class:`vocalis.providers.tools.ToolSource`.
    """


@hookspec
def vocalis_register_realtime(register: ProviderRegister[RealtimeModel]) -> None:
    """Register speech-to-speech (realtime) model classes.

    Args:
        register: Call ``register(cls, name=None, aliases=())`` once per
            subclass of :class:`vocalis.providers.realtime.RealtimeModel`.
    """


@hookspec
def vocalis_register_transport(register: ProviderRegister[Transport]) -> None:
    """Register transport classes (audio in and out of a session).

    Args:
        register: Call ``register(cls, name=None, aliases=())`` once per
            subclass of :class:`vocalis.providers.transport.Transport`.
    """


@hookspec
def vocalis_register_session_store(register: ProviderRegister[SessionStore]) -> None:
    """Register session store classes (where ``vocalis serve`` keeps conversations for resume).

    Args:
        register: Call ``register(cls, name=None, aliases=())`` once per
            subclass of :class:`vocalis.providers.session_store.SessionStore`;
            its ``schemes`` name the ``--store`` URLs it serves.
    """


@hookspec
def vocalis_register_commands(register: CommandRegister) -> None:
    """Register ``vocalis`` command-line commands (click commands or groups).

    Called only by the CLI, when it lists its commands or meets a name it
    does not know, so a plugin's command code costs nothing elsewhere. Import
    click and heavy modules inside the hook, not at the plugin's top level.

    Args:
        register: Call ``register(command, name=None)`` once per
            :class:`click.Command`; a name a built-in command or another
            plugin already uses is refused.
    """
