"""What every provider class shares: its kind, name, settings and lifecycle."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import ClassVar

from vocalis.providers.redact import redact
from vocalis.settings import ProviderSettings


class ProviderKind(StrEnum):
    """The kinds of provider a plugin can register."""

    STT = "stt"
    LLM = "llm"
    TTS = "tts"
    VAD = "vad"
    EOU = "eou"
    TOOLS = "tools"
    REALTIME = "realtime"
    TRANSPORT = "transport"
    SESSION_STORE = "session_store"

    @property
    def hook_name(self) -> str:
        """The hookspec through which providers of this kind are registered."""
        return f"vocalis_register_{self.value}"


class ErrorKind(StrEnum):
    """What sort of failure a :class:`ProviderError` reports.

    Set by the provider from what it knows (the exception's class, the HTTP
    status, the phase of the request), never from an SDK's message text, so
    callers and tests can branch on it whatever SDK version is installed.
    Whether a retry may help is :attr:`ProviderError.recoverable`, separately.
    """

    CONNECTION = "connection"
    """Could not connect, or an open connection dropped."""
    TIMEOUT = "timeout"
    """No answer in time (before any reply had started)."""
    STALLED = "stalled"
    """A reply had started streaming, then went quiet for too long."""
    AUTH = "auth"
    """Missing or refused credentials, or access forbidden (401, 403)."""
    RATE_LIMIT = "rate_limit"
    """Too many requests or the service is overloaded (429, 529)."""
    BAD_REQUEST = "bad_request"
    """The request is invalid (400, 404, 413, 422, bad input or settings)."""
    SERVER = "server"
    """The service failed (5xx)."""
    PROTOCOL = "protocol"
    """The reply was malformed or not what the protocol allows."""
    UNKNOWN = "unknown"
    """Anything else, or not classified by the provider."""

    @classmethod
    def of_status(cls, status: int) -> ErrorKind:
        """The kind an HTTP error status means, for any HTTP API.

        Args:
            status: The HTTP status code (of a reply or a refused handshake).
        """
        if status in (401, 402, 403):
            return cls.AUTH
        if status in (429, 529):  # 529: "overloaded" (Anthropic and others)
            return cls.RATE_LIMIT
        if status == 408:
            return cls.TIMEOUT
        if status >= 500:
            return cls.SERVER
        if status in (400, 404, 405, 413, 415, 422):
            return cls.BAD_REQUEST
        return cls.UNKNOWN


def describe_cause(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """``" (<type>: <text>)"`` of the deepest cause of ``exc``, for logs and people.

    It is whatever the library said: callers and tests go by
    :attr:`ProviderError.kind`, never by this text. The text is redacted
    (see :func:`~vocalis.providers.redact.redact`): it can quote a reply
    that echoes the request's credentials.

    Args:
        exc: The exception.
        secrets: Values to take out besides whatever looks like a credential
            (the provider's API key).
    """
    seen: set[int] = set()
    while exc.__cause__ is not None and id(exc.__cause__) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__
    text = redact(str(exc), secrets)
    return f" ({type(exc).__name__}: {text})" if text else f" ({type(exc).__name__})"


class ProviderError(Exception):
    """A provider failed; carries which provider so the session can report it.

    Args:
        message: What went wrong, in the provider's own words.
        provider: The provider's label, e.g. ``"stt:whisper"``.
        recoverable: Whether the session may retry or fall back.
        kind: The sort of failure; :attr:`ErrorKind.UNKNOWN` when not given.

    Attributes:
        provider: The provider's label, e.g. ``"stt:whisper"``.
        recoverable: Whether the session may retry or fall back.
        kind: The sort of failure (:class:`ErrorKind`).
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        recoverable: bool = True,
        kind: ErrorKind = ErrorKind.UNKNOWN,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.recoverable = recoverable
        self.kind = kind

    def __str__(self) -> str:
        text = super().__str__()
        return f"{self.provider}: {text}" if self.provider else text


def as_provider_error(label: str, exc: BaseException) -> ProviderError:
    """Label any exception a provider raised with the provider.

    A :class:`ProviderError` without a provider gets ``label``; anything else
    is wrapped (keeping it as the cause) with its type name in the message.
    """
    if isinstance(exc, ProviderError):
        if not exc.provider:
            exc.provider = label
        return exc
    wrapped = ProviderError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, provider=label)
    wrapped.__cause__ = exc
    return wrapped


class Provider:
    """Base class of every provider.

    Subclasses set ``kind`` (done by the per-kind base classes), ``name`` and a
    nested ``Settings`` class built with
    :func:`vocalis.settings.provider_settings_config`.

    Args:
        settings: A ready settings object; when omitted one is built from the
            environment, ``.env`` and ``overrides``.
        **overrides: Values for fields of ``Settings`` that win over the
            environment.
    """

    kind: ClassVar[ProviderKind]
    name: ClassVar[str] = ""
    Settings: ClassVar[type[ProviderSettings]] = ProviderSettings

    def __init__(self, *, settings: ProviderSettings | None = None, **overrides: object) -> None:
        if settings is None:
            settings = self.Settings(**overrides)
        elif overrides:
            settings = type(settings)(**{**settings.model_dump(), **overrides})
        self.settings = settings

    @property
    def label(self) -> str:
        """``"<kind>:<name>"``, used in logs, errors and metrics."""
        return f"{self.kind.value}:{self.name or type(self).__name__}"

    @property
    def model_name(self) -> str | None:
        """The model this provider runs, if its settings name one."""
        value = getattr(self.settings, "model", None)
        return str(value) if value is not None else None

    _pipelines = 0  # running pipelines that use this instance (see use_started)

    def use_started(self) -> None:
        """A pipeline starts running on this provider (one instance may serve several)."""
        self._pipelines += 1

    def use_ended(self) -> bool:
        """A pipeline stops running on it; True when none uses it any more (it may be closed)."""
        self._pipelines = max(0, self._pipelines - 1)
        return self._pipelines == 0

    async def prewarm(self) -> None:
        """Load models or open connections ahead of the first use."""

    async def aclose(self) -> None:
        """Release everything the provider holds. Must be idempotent."""

    def error(self, message: str, *, recoverable: bool = True, kind: ErrorKind = ErrorKind.UNKNOWN) -> ProviderError:
        """Build a :class:`ProviderError` labelled with this provider.

        Args:
            message: What went wrong, in the provider's own words.
            recoverable: Whether the session may retry or fall back.
            kind: The sort of failure.

        Returns:
            The error, ready to raise.
        """
        return ProviderError(message, provider=self.label, recoverable=recoverable, kind=kind)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label} settings={self.settings!r}>"
