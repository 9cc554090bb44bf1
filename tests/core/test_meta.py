"""Rules every installed provider follows (in the `all` env: every plugin of the repo)."""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr

from vocalis import make_plugin_manager
from vocalis.plugin.registry import base_class_for

REGISTRY = make_plugin_manager().registry
ENTRIES = list(REGISTRY)


@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{e.kind.value}:{e.name}" for e in ENTRIES])
def test_provider_follows_the_settings_and_naming_rules(entry) -> None:
    settings = entry.cls.Settings
    assert settings.model_config.get("env_prefix") == entry.env_prefix, (
        f"{entry.cls.__qualname__}.Settings must use env prefix {entry.env_prefix!r}"
    )
    assert issubclass(entry.cls, base_class_for(entry.kind))
    for name, field in settings.model_fields.items():
        if re.search(r"(^|_)(key|secret|token|password)$", name):
            assert field.annotation in (SecretStr, SecretStr | None), f"{name} must be a SecretStr"


def test_every_plugin_loaded() -> None:
    broken = {name: record.errors for name, record in make_plugin_manager().records.items() if record.status != "ok"}
    assert broken == {}
