"""What the Deepgram providers share: settings, the API key, URLs, the HTTP session.

Deepgram authenticates every request, REST or WebSocket, with the header
``Authorization: Token <key>``. The WebSocket endpoints live at the same
paths as the REST ones, on ``ws://``/``wss://``. A self-hosted Deepgram
needs no key, so a missing key is an error only for the hosted API.

The key is read, like every setting, from the environment or ``.env``: the
provider's own ``VOCALIS_<KIND>_DEEPGRAM_API_KEY``, else ``DEEPGRAM_API_KEY``.
``websockets`` logs each handshake header at DEBUG, ``Authorization``
included: its connections get :meth:`DeepgramClientMixin.ws_logger`, which
redacts the key before any handler sees it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from vocalis.providers.base import ErrorKind, Provider, ProviderError
from vocalis.providers.redact import RedactingLogger, provider_secrets, redact
from vocalis.settings import ProviderSettings, provider_env_prefix, provider_settings_config

HOSTED_URL = "https://api.deepgram.com"
"""The hosted API: the default ``base_url``."""

KEY_ENV = "DEEPGRAM_API_KEY"
"""The variable read when the provider's own ``..._API_KEY`` is not set."""

QueryValue = str | int | float | bool | list[str]


class DeepgramSettings(ProviderSettings):
    """Connection settings shared by the Deepgram providers.

    Each provider's ``Settings`` subclasses this with its own env prefix
    (``VOCALIS_STT_DEEPGRAM_``, ``VOCALIS_TTS_DEEPGRAM_``), its config from
    :func:`settings_config` and its ``api_key`` from :func:`api_key_field`.

    Attributes:
        api_key: The API key: ``VOCALIS_<KIND>_DEEPGRAM_API_KEY``, else
            ``DEEPGRAM_API_KEY`` (from the environment or ``.env``).
        base_url: The API root (``http(s)://host[:port]``, with or without
            ``/v1``), the hosted API by default. WebSocket URLs are derived
            from it.
        timeout: Seconds to connect, and to wait for each reply or chunk.
    """

    api_key: SecretStr | None = None
    base_url: str = HOSTED_URL
    timeout: float = Field(10.0, gt=0)

    @field_validator("base_url", mode="before")
    @classmethod
    def _url_with_scheme(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return HOSTED_URL  # unset (an empty variable): the hosted API
        if isinstance(value, str) and not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError(f"base_url needs a scheme, e.g. https://{value}")
        return value


def settings_config(kind: str) -> SettingsConfigDict:
    """The ``model_config`` of a Deepgram provider's settings.

    The core's config, plus fields settable by name (``api_key=...``) as
    well as by their environment alias (see :func:`api_key_field`).
    """
    return provider_settings_config(kind, "deepgram", populate_by_name=True)


def api_key_field(kind: str) -> Any:
    """The ``api_key`` field of a Deepgram provider's settings.

    Read from ``VOCALIS_<KIND>_DEEPGRAM_API_KEY``, else ``DEEPGRAM_API_KEY``,
    each from the environment or the ``.env`` file. (An alias replaces the
    env prefix, so the provider's own name is spelled out here.) Within one
    source the provider's own name wins; a variable in the environment wins
    over the ``.env`` file, as for every setting.
    """
    own = f"{provider_env_prefix(kind, 'deepgram')}API_KEY"
    return Field(None, validation_alias=AliasChoices(own, KEY_ENV))


def resolve_api_key(settings: DeepgramSettings) -> str | None:
    """The key to send (the ``api_key`` setting), or None when there is none."""
    if settings.api_key is not None and settings.api_key.get_secret_value():
        return settings.api_key.get_secret_value()
    return None


def query_string(params: dict[str, QueryValue | None]) -> str:
    """``params`` as a query string: booleans as ``true``/``false``, lists repeated, None left out."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        for item in values:
            pairs.append((name, str(item).lower() if isinstance(item, bool) else str(item)))
    return urlencode(pairs)


class DeepgramClientMixin:
    """The key, URLs, headers and HTTP session of a Deepgram provider.

    The ``aiohttp`` session belongs to the event loop that made it, so a
    provider reused under another loop (``asyncio.run`` per call) makes a new
    one. Mix in before the provider base class.
    """

    settings: DeepgramSettings
    label: str
    _session: aiohttp.ClientSession | None = None
    _session_loop: asyncio.AbstractEventLoop | None = None
    key_hint: ClassVar[str] = KEY_ENV

    def __init__(self, *, settings: ProviderSettings | None = None, **overrides: Any) -> None:
        # ``api_key=None`` (``api_key=os.getenv(...)`` of an unset variable)
        # gives no key: the one of the environment or ``.env`` is used.
        if "api_key" in overrides and overrides["api_key"] is None:
            del overrides["api_key"]
        super().__init__(settings=settings, **overrides)  # type: ignore[call-arg]  # Provider.__init__

    # -- credentials ------------------------------------------------------------
    def api_key(self) -> str | None:
        """The key to send, or None for a self-hosted server that needs none.

        Raises:
            ProviderError: The hosted API would be called without a key
                (``AUTH``, not recoverable).
        """
        key = resolve_api_key(self.settings)
        if key is None and self.root_url() == HOSTED_URL:
            prefix = self.settings.model_config.get("env_prefix", "")
            raise self.error(
                f"no API key: set {prefix}API_KEY or {KEY_ENV}, or point {prefix}BASE_URL at a self-hosted Deepgram",
                recoverable=False,
                kind=ErrorKind.AUTH,
            )
        return key

    def auth_headers(self) -> dict[str, str]:
        """``Authorization: Token <key>``, or nothing when no key is needed."""
        key = self.api_key()
        return {"Authorization": f"Token {key}"} if key else {}

    def secret_values(self) -> list[str]:
        """The credentials this provider may send, to keep out of messages."""
        return provider_secrets([self])

    def ws_logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """The ``websockets.client`` logger, redacting this provider's key (see :class:`RedactingLogger`)."""
        return RedactingLogger("websockets.client", self.secret_values())

    def error(self, message: str, *, recoverable: bool = True, kind: ErrorKind = ErrorKind.UNKNOWN) -> ProviderError:
        """Build a :class:`ProviderError` whose message has no credential in it.

        Messages quote what the server said (an error body, a close reason),
        which may echo the request's key.
        """
        base = super().error  # type: ignore[misc]  # Provider.error, after this mixin
        return base(redact(message, self.secret_values()), recoverable=recoverable, kind=kind)  # type: ignore[no-any-return]

    # -- URLs -------------------------------------------------------------------
    def root_url(self) -> str:
        """The API root without a trailing ``/`` or ``/v1``, as ``http(s)://``."""
        url = self.settings.base_url.rstrip("/")
        url = url.removesuffix("/v1")
        if url.startswith("ws://"):
            url = "http://" + url.removeprefix("ws://")
        elif url.startswith("wss://"):
            url = "https://" + url.removeprefix("wss://")
        return url

    def http_url(self, path: str, params: dict[str, QueryValue | None] | None = None) -> str:
        """The REST URL of ``path`` (e.g. ``/v1/listen``) with ``params``."""
        query = query_string(params or {})
        return f"{self.root_url()}{path}" + (f"?{query}" if query else "")

    def ws_url(self, path: str, params: dict[str, QueryValue | None] | None = None) -> str:
        """The WebSocket URL of ``path`` with ``params`` (``wss://`` for ``https://``)."""
        parts = urlsplit(self.http_url(path, params))
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, *parts[1:]))

    # -- HTTP -------------------------------------------------------------------
    def http(self) -> aiohttp.ClientSession:
        """The HTTP session for the running event loop (made on first use)."""
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._session_loop is not loop:
            if session is not None and not session.closed:
                # Its loop is gone (asyncio.run per call): nothing can be awaited
                # on it any more, so it is let go without closing its sockets.
                session.detach()
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.settings.timeout)
            session = aiohttp.ClientSession(timeout=timeout, raise_for_status=False)
            self._session, self._session_loop = session, loop
        return session

    async def check_key(self) -> None:
        """Open a connection and check the key (``GET /v1/projects``).

        Leaves a warm connection in the pool for the first request. Only an
        unreachable server or a refused key (401) is an error: a server
        without that endpoint (self-hosted) or a key scoped without it is fine.

        Raises:
            ProviderError: Unreachable (recoverable) or the key is refused (not).
        """
        from vocalis_deepgram.errors import exception_error, status_error

        timeout = aiohttp.ClientTimeout(total=min(self.settings.timeout, 5.0))
        try:
            async with self.http().get(
                self.http_url("/v1/projects"), headers=self.auth_headers(), timeout=timeout
            ) as response:
                if response.status == 401:
                    raise status_error(self, 401, await response.text(), response.headers)  # type: ignore[arg-type]
        except ProviderError:
            raise
        except Exception as exc:
            raise exception_error(self, exc, started=False) from exc  # type: ignore[arg-type]

    async def close_http(self) -> None:
        """Close the HTTP session if it belongs to this loop. Idempotent."""
        session, self._session = self._session, None
        loop, self._session_loop = self._session_loop, None
        if session is None or session.closed:
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is running:
            await session.close()
        else:
            session.detach()


def describe(provider: Provider, data: Any) -> str:
    """A short, redacted rendering of something a server sent, for messages."""
    secrets = provider.secret_values() if isinstance(provider, DeepgramClientMixin) else provider_secrets([provider])
    return redact(str(data), secrets, limit=200)
