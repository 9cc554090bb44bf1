"""What both Google providers share: settings, the API key, TLS and secrets.

The Gemini API takes its key in the ``x-goog-api-key`` header, on the REST
endpoints and on the Live API's WebSocket upgrade alike; the key is never put
in a URL, where proxies and logs would keep it.

The key comes, first found: a keyword argument; the provider's own variable
(``VOCALIS_LLM_GOOGLE_API_KEY`` / ``VOCALIS_REALTIME_GOOGLE_API_KEY``) in the
environment, then in ``.env``; ``GOOGLE_API_KEY``, then ``GEMINI_API_KEY``
(the official SDKs' names), in the environment, then in ``.env``.
"""

from __future__ import annotations

import functools
import os
import ssl
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.redact import provider_secrets
from vocalis.settings import ProviderSettings

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from vocalis.providers.base import Provider

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
"""The Gemini API's root (REST; the Live API's WebSocket is derived from it)."""

KEY_ENV = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
"""Variables read for the key (environment, then ``.env``) when the provider's
own setting is empty, in the order the official SDKs read them."""

API_KEY_HEADER = "x-goog-api-key"


S = TypeVar("S", bound=ProviderSettings)


class _SkipEmptyKey(PydanticBaseSettingsSource):
    """Another source's values, less an empty ``api_key``.

    ``api_key=None`` (as in the SDKs) or an empty variable means "not
    given": the sources below still supply the key.
    """

    def __init__(self, settings_cls: type[BaseSettings], source: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._source = source

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ gives all values at once

    def __call__(self) -> dict[str, Any]:
        values = dict(self._source())
        key = values.get("api_key")
        if key is None or key == "" or (isinstance(key, SecretStr) and not key.get_secret_value()):
            values.pop("api_key", None)
        return values


class _VendorKeySource(PydanticBaseSettingsSource):
    """``api_key`` from ``GOOGLE_API_KEY`` or ``GEMINI_API_KEY``.

    Each is looked for in the environment, then in the ``.env`` file the
    settings read (none with ``_env_file=None``); pydantic-settings would put
    the provider's prefix in front of any name it reads, hence this source.
    """

    def __init__(self, settings_cls: type[BaseSettings], dotenv: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._dotenv = dotenv

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ gives the one value

    def __call__(self) -> dict[str, Any]:
        # The file's names are lower-cased unless the settings are case-sensitive.
        from_file: dict[str, str | None] = getattr(self._dotenv, "env_vars", None) or {}
        for name in KEY_ENV:
            if value := os.environ.get(name):
                return {"api_key": value}
        for name in KEY_ENV:
            if value := from_file.get(name) or from_file.get(name.lower()):
                return {"api_key": value}
        return {}


class GoogleSettings(ProviderSettings):
    """Connection settings both Google providers share.

    Each provider's ``Settings`` subclasses this with its own env prefix
    (``VOCALIS_LLM_GOOGLE_``, ``VOCALIS_REALTIME_GOOGLE_``).

    Attributes:
        api_key: The Gemini API key; falls back to ``GOOGLE_API_KEY``, then
            ``GEMINI_API_KEY`` (each from the environment, then ``.env``).
        base_url: The API root (``https://...``); a gateway or a local test
            server. The Live API's WebSocket URL is derived from it
            (``https`` becomes ``wss``).
        api_version: The API version in the paths (``v1beta`` or ``v1alpha``).
        timeout: Seconds to connect, and seconds a reply may pause.
        headers: Extra HTTP headers for every request or WebSocket upgrade
            (a gateway's routing key); never logged.
    """

    api_key: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL
    api_version: str = Field("v1beta", pattern=r"^v1(alpha|beta)?$")
    timeout: float = Field(30.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict, repr=False)  # may carry keys

    @field_validator("base_url")
    @classmethod
    def _url_with_scheme(cls, value: str) -> str:
        if not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError(f"base_url needs a scheme, e.g. https://{value}")
        return value.rstrip("/")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keywords, the prefixed variables (environment, ``.env``), then the
        SDKs' key variables: a project's own setting beats a shell-wide key."""
        return (
            _SkipEmptyKey(settings_cls, init_settings),
            _SkipEmptyKey(settings_cls, env_settings),
            _SkipEmptyKey(settings_cls, dotenv_settings),
            _VendorKeySource(settings_cls, dotenv_settings),
            file_secret_settings,
        )


def one_thinking_setting(settings: S) -> S:
    """Refuse ``thinking_budget`` with ``thinking_level``: the API answers both with a 400.

    Used as the ``after`` model validator of the providers' settings.
    """
    if getattr(settings, "thinking_budget", None) is not None and getattr(settings, "thinking_level", None):
        raise ValueError("set thinking_budget (Gemini 2.5) or thinking_level (Gemini 3), not both")
    return settings


def resolve_api_key(settings: GoogleSettings) -> str:
    """The key requests will carry ("" if none): the settings found it when
    they were made, in a keyword or a variable (see the module's docstring)."""
    return settings.api_key.get_secret_value() if settings.api_key is not None else ""


def has_credentials(settings: GoogleSettings) -> bool:
    """Whether requests will carry credentials: a key, or an auth header of the caller's."""
    headers = {name.lower() for name in settings.headers}
    return bool(resolve_api_key(settings)) or bool(headers & {API_KEY_HEADER, "authorization"})


def auth_headers(settings: GoogleSettings) -> dict[str, str]:
    """The extra headers plus the key header (the caller's own auth header wins)."""
    headers = dict(settings.headers)
    key = resolve_api_key(settings)
    if key and not any(name.lower() == API_KEY_HEADER for name in headers):
        headers[API_KEY_HEADER] = key
    return headers


def missing_key_error(provider: Provider) -> ProviderError:
    """The error for a provider that has no key to send (``AUTH``, not recoverable)."""
    prefix = provider.settings.model_config.get("env_prefix", "")
    return provider.error(
        f"no API key: set {prefix}API_KEY (or {' or '.join(KEY_ENV)}) in the environment or .env",
        recoverable=False,
        kind=ErrorKind.AUTH,
    )


def secrets_of(provider: Provider) -> list[str]:
    """The credentials a provider may send, to take out of any text it reports."""
    found = provider_secrets([provider])
    settings = provider.settings
    if isinstance(settings, GoogleSettings):
        found.append(resolve_api_key(settings))
    return [value for value in found if value]


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The TLS context every connection of the process shares.

    Building one loads the CA bundle (tens of milliseconds, far more on a busy
    machine): callers on the event loop get it through ``asyncio.to_thread``
    the first time. An ``SSLContext`` is safe to share.
    """
    return ssl.create_default_context()
