"""Plugin discovery, isolation and the provider registry."""

from __future__ import annotations

import types
from typing import ClassVar

import pytest

from vocalis import hookimpl, make_plugin_manager
from vocalis.plugin.registry import RegistrationError, UnknownProviderError
from vocalis.providers.base import ProviderKind
from vocalis.providers.stt import STT
from vocalis.providers.tts import TTS
from vocalis.settings import ProviderSettings, VocalisSettings, provider_settings_config


class EchoSTT(STT):
    name: ClassVar[str] = "echo"

    class Settings(ProviderSettings):
        model_config = provider_settings_config("stt", "echo")
        language: str = "en"


def stt_plugin(cls: type = EchoSTT, **kwargs: object) -> types.SimpleNamespace:
    @hookimpl
    def vocalis_register_stt(register):
        register(cls, **kwargs)

    return types.SimpleNamespace(vocalis_register_stt=vocalis_register_stt)


def test_entry_point_plugin_is_discovered_with_its_distribution(dists) -> None:
    dists.provider_plugin("vocalis-acme", "stt", "acme", version="2.0.1")
    pm = make_plugin_manager()
    entry = pm.registry.get("stt", "acme")
    assert entry.origin.plugin == "acme"
    assert entry.origin.distribution == "vocalis-acme"
    assert entry.origin.version == "2.0.1"
    assert pm.records["acme"].status == "ok"
    assert type(pm.registry.create("stt", "acme")).__module__ == "vocalis_acme.plugin"


def test_each_manager_is_fresh(dists) -> None:
    dists.provider_plugin("vocalis-acme", "stt", "acme")
    first, second = make_plugin_manager(), make_plugin_manager()
    assert first is not second
    assert first.registry is not second.registry
    assert ("stt", "acme") in first.registry and ("stt", "acme") in second.registry


def test_disabled_plugins_are_not_loaded(dists, monkeypatch) -> None:
    dists.provider_plugin("vocalis-acme", "stt", "acme")
    dists.provider_plugin("vocalis-other", "tts", "other")
    monkeypatch.setenv("VOCALIS_DISABLED_PLUGINS", "acme, builtins")
    pm = make_plugin_manager()
    assert ("stt", "acme") not in pm.registry
    assert ("tts", "other") in pm.registry
    assert "builtins" not in pm.records


def test_allow_list_loads_only_named_plugins(dists, monkeypatch) -> None:
    dists.provider_plugin("vocalis-acme", "stt", "acme")
    dists.provider_plugin("vocalis-other", "tts", "other")
    monkeypatch.setenv("VOCALIS_PLUGINS", "other")
    pm = make_plugin_manager()
    assert ("stt", "acme") not in pm.registry
    assert ("tts", "other") in pm.registry
    assert "builtins" in pm.records


def test_autoload_can_be_disabled(dists, monkeypatch) -> None:
    dists.provider_plugin("vocalis-acme", "stt", "acme")
    monkeypatch.setenv("VOCALIS_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = make_plugin_manager(plugins=[("mine", stt_plugin())])
    assert ("stt", "acme") not in pm.registry
    assert ("stt", "echo") in pm.registry


def test_duplicate_name_is_an_error_naming_both_plugins(dists) -> None:
    dists.provider_plugin("vocalis-acme", "stt", "echo")
    pm = make_plugin_manager(plugins=[("late", stt_plugin())])
    assert pm.registry.get("stt", "echo").origin.plugin == "acme"
    record = pm.records["late"]
    assert record.status == "error"
    assert "'late'" in record.errors[0] and "'acme'" in record.errors[0]


def test_duplicate_alias_is_rejected() -> None:
    class Other(STT):
        name: ClassVar[str] = "other"

    pm = make_plugin_manager(
        autoload=False,
        plugins=[("one", stt_plugin(aliases=["shared"])), ("two", stt_plugin(Other, aliases=["shared"]))],
    )
    assert pm.registry.get("stt", "shared").cls is EchoSTT
    assert pm.records["two"].status == "error"


def test_plugin_failing_on_import_does_not_stop_others(dists) -> None:
    dists.install("vocalis-broken", "raise RuntimeError('no GPU here')\n")
    dists.install("vocalis-exits", "import sys\nsys.exit(3)\n")
    dists.provider_plugin("vocalis-acme", "stt", "acme")
    pm = make_plugin_manager()
    assert ("stt", "acme") in pm.registry
    broken = pm.records["broken"]
    assert broken.status == "error"
    assert "RuntimeError: no GPU here" in broken.errors[0]
    assert broken.origin.distribution == "vocalis-broken"
    assert pm.records["exits"].status == "error"


def test_hook_that_raises_is_isolated_per_plugin() -> None:
    @hookimpl
    def vocalis_register_stt(register):
        raise ValueError("boom")

    @hookimpl
    def vocalis_register_tts(register):
        class Fine(TTS):
            name: ClassVar[str] = "fine"

        register(Fine)

    bad = types.SimpleNamespace(vocalis_register_stt=vocalis_register_stt, vocalis_register_tts=vocalis_register_tts)
    pm = make_plugin_manager(autoload=False, plugins=[("bad", bad), ("good", stt_plugin())])
    assert ("stt", "echo") in pm.registry
    assert ("tts", "fine") in pm.registry
    assert pm.records["bad"].kinds_failed == [ProviderKind.STT]
    assert "ValueError: boom" in pm.records["bad"].errors[0]
    assert pm.records["good"].status == "ok"


def test_misspelled_hookimpl_fails_loudly() -> None:
    def vocalis_register_sst(register):  # no marker: the prefix alone counts
        raise AssertionError("never called")

    typo = types.SimpleNamespace(vocalis_register_sst=vocalis_register_sst)
    pm = make_plugin_manager(autoload=False, plugins=[("typo", typo), ("good", stt_plugin())])
    record = pm.records["typo"]
    assert record.status == "error"
    assert "vocalis_register_sst" in record.errors[0]
    assert "vocalis_register_stt" in record.errors[0]  # the suggestion
    assert ("stt", "echo") in pm.registry
    pm.check_pending()


def test_hookimpl_with_unknown_argument_is_rejected() -> None:
    @hookimpl
    def vocalis_register_stt(register, extra):
        pass

    pm = make_plugin_manager(
        autoload=False, plugins=[("odd", types.SimpleNamespace(vocalis_register_stt=vocalis_register_stt))]
    )
    assert pm.records["odd"].status == "error"
    assert "extra" in pm.records["odd"].errors[0]


@pytest.mark.parametrize(
    ("registered", "message"),
    [
        (EchoSTT(), "register the class, not an instance"),
        (int, "does not subclass"),
    ],
)
def test_register_rejects_non_provider_classes(registered: object, message: str) -> None:
    pm = make_plugin_manager(autoload=False, plugins=[("odd", stt_plugin(registered))])
    assert pm.records["odd"].status == "error"
    assert message in pm.records["odd"].errors[0]


def test_register_rejects_bad_names() -> None:
    pm = make_plugin_manager(autoload=False, plugins=[("odd", stt_plugin(name="Has Space"))])
    assert "invalid name" in pm.records["odd"].errors[0]


def test_aliases_and_create_with_overrides(monkeypatch) -> None:
    monkeypatch.setenv("VOCALIS_STT_ECHO_LANGUAGE", "de")
    pm = make_plugin_manager(autoload=False, plugins=[("mine", stt_plugin(aliases=["parrot"]))])
    assert pm.registry.get("stt", "parrot").name == "echo"
    assert pm.registry.create("stt", "parrot").settings.language == "de"
    assert pm.registry.create("stt", "echo", language="fr").settings.language == "fr"
    assert pm.registry.names("stt") == ["echo"]
    assert [e.name for e in pm.registry.entries("stt")] == ["echo"]


def test_unknown_provider_lists_available() -> None:
    pm = make_plugin_manager(autoload=False, plugins=[("mine", stt_plugin())])
    with pytest.raises(UnknownProviderError, match=r"no stt provider named 'nope' \(available: echo\)"):
        pm.registry.get("stt", "nope")
    with pytest.raises(UnknownProviderError, match="none installed"):
        pm.registry.get("llm", "x")


def test_registry_add_rejects_duplicates_directly() -> None:
    pm = make_plugin_manager(autoload=False, plugins=[("mine", stt_plugin())])
    entry = pm.registry.get("stt", "echo")
    with pytest.raises(RegistrationError, match="already registered"):
        pm.registry.add(entry)


def test_settings_object_can_be_passed_in(dists) -> None:
    dists.provider_plugin("vocalis-acme", "stt", "acme")
    pm = make_plugin_manager(VocalisSettings(disabled_plugins=["acme"]))
    assert ("stt", "acme") not in pm.registry


def test_a_wrapper_hookimpl_on_a_registration_hook_is_reported_not_silently_ignored() -> None:
    # The manager calls each plugin's registration hook on its own (failures
    # stay isolated); a wrapper would never be given the register.
    import types

    from vocalis import hookimpl

    module = types.ModuleType("wrapping_plugin")

    @hookimpl(wrapper=True)
    def vocalis_register_stt(register):  # type: ignore[no-untyped-def]
        return (yield)

    module.vocalis_register_stt = vocalis_register_stt  # type: ignore[attr-defined]
    pm = make_plugin_manager(plugins=[("wrapping", module)])
    pm.registry  # noqa: B018 - collecting runs the hooks
    record = pm.records["wrapping"]
    assert record.status == "error"
    assert any("must be a plain hookimpl, not a wrapper" in error for error in record.errors)
