"""Configuration through pydantic-settings: core settings and provider settings.

Everything reads the process environment and a ``.env`` file in the working
directory. Core settings use the ``VOCALIS_`` prefix; each provider class owns
a :class:`ProviderSettings` subclass whose prefix is
``VOCALIS_<KIND>_<NAME>_`` (see :func:`provider_settings_config`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


def env_token(text: str) -> str:
    """Turn a provider kind or name into its environment-variable spelling.

    Args:
        text: A kind (``"stt"``) or provider name (``"faster-whisper"``).

    Returns:
        The upper-case token with dashes and dots as underscores
        (``"FASTER_WHISPER"``).
    """
    return re.sub(r"[^A-Za-z0-9]", "_", text).upper()


def provider_env_prefix(kind: str, name: str) -> str:
    """The environment prefix a provider's settings must use.

    Args:
        kind: The provider kind, e.g. ``"stt"``.
        name: The provider's registered name, e.g. ``"whisper"``.

    Returns:
        For example ``"VOCALIS_STT_WHISPER_"``.
    """
    return f"VOCALIS_{env_token(kind)}_{env_token(name)}_"


def provider_settings_config(kind: str, name: str, **extra: object) -> SettingsConfigDict:
    """Build the ``model_config`` for a provider's ``Settings`` class.

    Args:
        kind: The provider kind.
        name: The provider's registered name.
        **extra: Further ``SettingsConfigDict`` keys.

    Returns:
        A config with the right env prefix, ``.env`` support and unknown
        variables ignored.
    """
    config = SettingsConfigDict(
        env_prefix=provider_env_prefix(kind, name),
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )
    config.update(extra)  # type: ignore[typeddict-item]
    return config


def validate_name(name: str) -> str:
    """Check that a plugin or provider name is lower-case and env-safe.

    Raises:
        ValueError: The name has characters other than ``a-z0-9_-``.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"invalid name {name!r}: use lower-case letters, digits, '-' and '_'")
    return name


# Last words of field names whose values are credentials even when not typed
# SecretStr (``headers`` dicts carry ``Authorization``; ``api_key: str`` happens).
_SECRET_WORDS = frozenset(
    {
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "credential",
        "credentials",
        "auth",
        "authorization",
        "header",
        "headers",
        "cookie",
        "cookies",
    }
)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")
_QUERY_VALUE = re.compile(r"(?P<name>[?&][^=&#\s]+=)[^&#\s]*")


def _redact_url(text: str) -> str:
    """A URL without its ``user:password@`` part and its query values (keys travel there)."""
    return _QUERY_VALUE.sub(r"\g<name>***", _URL_USERINFO.sub(r"\g<scheme>***@", text))


class _Masked:
    def __repr__(self) -> str:
        return "'**********'"


def _mask(value: Any) -> Any:
    """``value`` with every string in it masked (dict keys stay readable)."""
    if isinstance(value, str):
        return _Masked() if value else value
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v) for v in value)
    return value


class ProviderSettings(BaseSettings):
    """Base class of every provider's settings.

    Subclasses set ``model_config = provider_settings_config(kind, name)``.
    Secrets must be typed ``SecretStr`` so that they never show in reprs or
    logs. As a second line of defence, the repr also masks the strings of
    fields named like credentials (``api_key``, ``*_token``, ``headers``,
    ...) and the ``user:password@`` part and query values of URLs.
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name and name.lower().rsplit("_", 1)[-1] in _SECRET_WORDS:
                value = _mask(value)
            elif isinstance(value, str) and "://" in value:
                value = _redact_url(value)
            yield name, value


def _split_list(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class VocalisSettings(BaseSettings):
    """Core settings, read from ``VOCALIS_*`` variables and ``.env``.

    Attributes:
        stt: Default STT provider name (for pipelines built without one).
        llm: Default LLM provider name.
        tts: Default TTS provider name.
        vad: Default VAD provider name.
        eou: Default end-of-utterance provider name.
        transport: Default transport name.
        log_level: Level for the CLI's log sink.
        plugins: When set, load only these entry-point plugins.
        disabled_plugins: Plugins never to load (entry points or built-ins).
        disable_plugin_autoload: Load no entry-point plugins at all.
    """

    model_config = SettingsConfigDict(env_prefix="VOCALIS_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    stt: str | None = None
    llm: str | None = None
    tts: str | None = None
    vad: str | None = None
    eou: str | None = None
    transport: str | None = None
    log_level: str = "INFO"
    plugins: Annotated[list[str] | None, NoDecode] = None
    disabled_plugins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    disable_plugin_autoload: bool = False

    @field_validator("plugins", "disabled_plugins", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        return value.upper()

    def provider_for(self, kind: str) -> str | None:
        """The configured default provider name for ``kind``, if any."""
        value = getattr(self, kind, None)
        return value if isinstance(value, str) and value else None
