"""The checks every provider kind shares: settings, label, secrets, close."""

from __future__ import annotations

import re
import typing
from typing import Any, ClassVar

import pytest

from vocalis.providers.base import Provider
from vocalis.settings import provider_env_prefix
from vocalis.testing.conformance.support import run, work_modules

SECRET = "sk-conformance-secret-0123456789"

# Setting names that hold credentials: they must be typed SecretStr.
_SECRET_NAME = re.compile(
    r"(^|_)(api_?key|secret|secret_key|private_key|password|passwd|token|access_token|"
    r"auth_token|bearer|credentials?)$"
)


def _is_secret_type(annotation: Any) -> bool:
    from pydantic import SecretStr

    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


class ProviderConformance:
    """Checks every provider kind shares. Override the ``provider`` fixture.

    Attributes:
        stop_seconds: After a close or cancellation, how long the provider's
            tasks and threads may take to stop (a step that cannot be
            interrupted, such as one decoder pass, may finish first).
        worker_modules: More modules whose code counts as the provider's
            work, when its heavy lifting happens outside its own package
            and not below one of its frames.
    """

    stop_seconds: ClassVar[float] = 10.0
    worker_modules: ClassVar[tuple[str, ...]] = ()

    @pytest.fixture
    def provider(self) -> Provider:
        raise NotImplementedError("override the `provider` fixture with an instance of your provider")

    def _modules(self, provider: Any) -> tuple[str, ...]:
        return work_modules(provider, self.worker_modules)

    def test_settings_use_the_provider_prefix(self, provider: Provider) -> None:
        expected = provider_env_prefix(provider.kind.value, provider.name)
        assert provider.Settings.model_config.get("env_prefix") == expected, (
            f"{type(provider).__name__}.Settings must use env prefix {expected!r}"
        )

    def test_repr_and_label(self, provider: Provider) -> None:
        assert provider.label == f"{provider.kind.value}:{provider.name}"
        assert type(provider).__name__ in repr(provider)

    def test_secret_settings_are_masked(self, provider: Provider) -> None:
        """Credentials are SecretStr and never show in repr, str or dumps."""
        from pydantic import SecretStr

        fields = provider.Settings.model_fields
        secret_fields = [n for n, f in fields.items() if _is_secret_type(f.annotation)]
        plain = [n for n in fields if _SECRET_NAME.search(n.lower()) and n not in secret_fields]
        assert not plain, f"settings {plain} hold credentials: type them SecretStr so they are masked"
        for field in secret_fields:
            settings = provider.settings.model_copy(update={field: SecretStr(SECRET)})
            shown = {
                "repr(settings)": repr(settings),
                "str(settings)": str(settings),
                "model_dump()": str(settings.model_dump()),
                "model_dump_json()": settings.model_dump_json(),
                "repr(provider)": repr(type(provider)(settings=settings)),
            }
            leaks = [where for where, text in shown.items() if SECRET in text]
            assert not leaks, f"the secret {field!r} shows in {leaks}"

    def test_aclose_is_idempotent(self, provider: Provider) -> None:
        fresh = type(provider)(settings=provider.settings)

        async def close_twice() -> None:
            await fresh.aclose()
            await fresh.aclose()

        run(close_twice())
