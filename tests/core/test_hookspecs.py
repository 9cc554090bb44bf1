"""Every hookspec is documented, registers its kind, and has a test."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import provider_plugin_source

from vocalis import make_plugin_manager
from vocalis._docgen import hookspec_names, render_hookspec_reference
from vocalis.providers.base import ProviderKind

ROOT = Path(__file__).resolve().parents[2]


def test_hookspec_reference_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "hookspecs.md").read_text()
    assert committed == render_hookspec_reference(), (
        "docs/hookspecs.md is stale: run `python -m vocalis._docgen > docs/hookspecs.md`"
    )


def test_every_kind_has_a_hookspec_and_back() -> None:
    # Every hookspec registers a provider kind, except the CLI's commands hook.
    expected = [kind.hook_name for kind in ProviderKind] + ["vocalis_register_commands"]
    assert sorted(hookspec_names()) == sorted(expected)


# Each hookspec and the kind its registration test expects. A new hookspec
# without a row here fails test_every_hookspec_is_documented_and_tested.
HOOK_TESTS = {
    "vocalis_register_stt": ProviderKind.STT,
    "vocalis_register_llm": ProviderKind.LLM,
    "vocalis_register_tts": ProviderKind.TTS,
    "vocalis_register_vad": ProviderKind.VAD,
    "vocalis_register_eou": ProviderKind.EOU,
    "vocalis_register_tools": ProviderKind.TOOLS,
    "vocalis_register_realtime": ProviderKind.REALTIME,
    "vocalis_register_transport": ProviderKind.TRANSPORT,
    "vocalis_register_session_store": ProviderKind.SESSION_STORE,
}
# Hookspecs that register something other than providers, and their tests.
OTHER_HOOK_TESTS = {"vocalis_register_commands": "tests/core/test_plugin_commands.py"}


def test_every_hookspec_is_documented_and_tested() -> None:
    docs = (ROOT / "docs" / "hookspecs.md").read_text()
    for name in hookspec_names():
        assert f"## `{name}(" in docs, f"{name} has no section in docs/hookspecs.md"
        assert name in HOOK_TESTS or (ROOT / OTHER_HOOK_TESTS.get(name, "-")).is_file(), (
            f"{name} has no registration test"
        )


@pytest.mark.parametrize(("hook", "kind"), list(HOOK_TESTS.items()))
def test_each_hook_registers_its_kind(dists, hook: str, kind: ProviderKind) -> None:
    assert kind.hook_name == hook
    dists.install(f"vocalis-k{kind.value}", provider_plugin_source(kind.value, f"x-{kind.value}"))
    pm = make_plugin_manager()
    entry = pm.registry.get(kind, f"x-{kind.value}")
    assert entry.kind is kind
    assert entry.origin.distribution == f"vocalis-k{kind.value}"
    provider = pm.registry.create(kind, f"x-{kind.value}")
    assert provider.settings.greeting == "hello"
    assert provider.label == f"{kind.value}:x-{kind.value}"
