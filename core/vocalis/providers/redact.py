"""Take credentials out of text that came from elsewhere, before it is logged or sent.

An upstream error's text (an HTTP error body, an SDK message, a WebSocket
close reason) ends up in a :class:`~vocalis.providers.base.ProviderError`,
in the log and in the session's ``error`` event, which ``vocalis serve``
forwards to the remote client. A gateway that echoes the request's
``Authorization`` header or API key in its 401 reply would leak the key
that way. :func:`redact` removes the secrets a provider knows it holds, and
anything shaped like a credential whatever the provider, then caps the
length (an upstream body can be a whole HTML page)::

    message = redact(response_text, [api_key])
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from pydantic import SecretStr

__all__ = ["MARK", "MIN_SECRET_LENGTH", "RedactingLogger", "provider_secrets", "redact", "settings_secrets"]

MARK = "[redacted]"
"""What a removed credential is replaced with."""

MIN_SECRET_LENGTH = 8
"""Given secrets shorter than this are not searched for: they would match
ordinary words, and no real API key is that short."""

_ELLIPSIS = "…"

# The characters of an opaque token (base64, base64url, hex, URL-encoded):
# truncation never keeps half a run of them, which could be half a key.
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=.~%")

# ``scheme://user:password@`` (password redacted) or ``scheme://token@``.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/?#@\s:]*)(?P<pw>:[^/?#@\s]*)?@")
# Headers whose whole value is a credential; an unquoted value runs to the end of the line.
_HEADER = re.compile(
    r"(?P<name>(?<![\w-])(?:proxy-)?(?:authorization|cookie|set-cookie)[\"']?\s*[:=]\s*)"
    r"(?:(?P<quote>[\"'])(?:(?!(?P=quote)).)*(?P=quote)|[^\r\n\"'<>{}]+)",
    re.IGNORECASE,
)
# ``api_key=...``, ``"api_key": "..."``, ``x-api-key: ...``, ``token=...``, ``password: ...``.
_ASSIGNMENT = re.compile(
    r"(?P<name>(?<![\w-])(?:x[-_])?(?:goog[-_])?(?:api[-_]?key|access[-_]?token|refresh[-_]?token|"
    r"id[-_]token|auth[-_]?token|session[-_]?token|client[-_]?secret|secret[-_]?key|private[-_]?key|"
    r"password|passwd|token|secret)(?![\w-])[\"']?\s*[:=]\s*)"
    r"(?:(?P<quote>[\"'])(?:\\.|(?!(?P=quote))[^\\])*(?P=quote)|[^\s\"',;&<>{}()\[\]]+)",
    re.IGNORECASE,
)
# A query parameter whose name ends like a credential's (``?key=``, ``&X-Amz-Signature=``).
_QUERY = re.compile(
    r"(?P<name>[?&;][^=&#\s]*(?:token|key|secret|pass|password|passwd|sig|signature|auth|credential)=)"
    r"[^&#\s\"'<>]+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\bBearer\s+(?!tokens?\b)[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
# Keys with a well-known prefix followed by a long opaque part, and JWTs.
_KEY_PREFIXES = (
    "sk-",
    "rk-",
    "xai-",
    "gsk_",
    "hf_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxa-",
    "xoxb-",
    "xoxp-",
    "xoxr-",
    "xoxs-",
    "AIza",
    "AKIA",
    "ASIA",
    "r8_",
    "pplx-",
    "nvapi-",
)
_PREFIXED_KEY = re.compile(
    r"(?<![A-Za-z0-9])(?:" + "|".join(map(re.escape, _KEY_PREFIXES)) + r")[A-Za-z0-9_\-]{12,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
)


def redact(text: str, secrets: Iterable[str] = (), *, limit: int | None = 500) -> str:
    """``text`` without credentials, at most ``limit`` characters long.

    Removes each of ``secrets`` (also URL-encoded or JSON-escaped, in any
    letter case) and whatever looks like a credential: ``Bearer`` tokens,
    ``Authorization`` and ``Cookie`` header values, ``api_key=``/``token=``/
    ``"password": "..."`` assignments, credential-named query parameters,
    passwords in URLs (``scheme://user:pass@host``), keys with a well-known
    prefix (``sk-...``, ``sk-ant-...``, ``AIza...``) and JWTs. Each becomes
    :data:`MARK`. Safe on any text: it never raises.

    Args:
        text: Text from outside (an error body, an SDK message).
        secrets: Values known to be secret (API keys, header values).
            Values shorter than :data:`MIN_SECRET_LENGTH` are ignored.
        limit: Most characters kept; longer text is cut (never in the middle
            of a token) and ends with ``…``. None keeps it whole.

    Returns:
        The redacted text.
    """
    pattern = _secrets_pattern(secrets)
    if pattern is not None:
        text = pattern.sub(MARK, text)
    text = _URL_USERINFO.sub(_userinfo, text)
    text = _HEADER.sub(_keep_name, text)
    text = _ASSIGNMENT.sub(_keep_name, text)
    text = _QUERY.sub(lambda m: m["name"] + MARK, text)
    text = _BEARER.sub("Bearer " + MARK, text)
    text = _PREFIXED_KEY.sub(MARK, text)
    return text if limit is None else _truncate(text, limit)


def settings_secrets(settings: Any) -> list[str]:
    """The secret values held by a settings object.

    Those are the values of ``SecretStr`` fields, and the strings in fields
    named like credentials (``headers``, ``*_token``, ``*_key``, ...), which
    may carry keys in plain strings; for ``"Bearer <token>"`` values the
    token too.

    Args:
        settings: A pydantic model (a provider's settings); anything else
            has no secrets.
    """
    found: list[str] = []
    fields = getattr(type(settings), "model_fields", None)
    if not isinstance(fields, Mapping):
        return found
    for name in fields:
        value = getattr(settings, name, None)
        _collect(value, found, credential=_CREDENTIAL_FIELD.search(name) is not None)
    return found


def provider_secrets(providers: Iterable[Any]) -> list[str]:
    """The secrets in the settings of each provider and of the providers it wraps.

    A fallback provider's own settings hold nothing: the providers it tries
    (its ``fallback.providers``) are searched too.

    Args:
        providers: Providers (anything with ``settings``).
    """
    found: list[str] = []
    seen: set[int] = set()
    pending = list(providers)
    while pending:
        provider = pending.pop()
        if id(provider) in seen:
            continue
        seen.add(id(provider))
        found += settings_secrets(getattr(provider, "settings", None))
        wrapped = getattr(getattr(provider, "fallback", None), "providers", None)
        if isinstance(wrapped, list | tuple):
            pending.extend(wrapped)
    return found


_CREDENTIAL_FIELD = re.compile(r"(key|token|secret|password|passwd|credentials?|auth|authorization|headers?|cookies?)$")


def _collect(value: Any, found: list[str], *, credential: bool) -> None:
    if isinstance(value, SecretStr):
        _add(value.get_secret_value(), found)
    elif isinstance(value, str):
        if credential:
            _add(value, found)
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(item, found, credential=credential)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _collect(item, found, credential=credential)


def _add(value: str, found: list[str]) -> None:
    found.append(value)
    # "Bearer <token>", "Basic <credentials>": the credential alone may be echoed.
    scheme, _, credential = value.strip().partition(" ")
    if credential and scheme.isalpha():
        found.append(credential.strip())


def _secrets_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    variants: set[str] = set()
    for secret in secrets:
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
            continue
        variants.update(
            {
                secret,
                quote(secret, safe=""),
                quote(secret),
                quote_plus(secret),
                json.dumps(secret)[1:-1],
                secret.replace("/", "\\/"),
            }
        )
    if not variants:
        return None
    # Longest first: a secret that contains another is removed whole.
    ordered = sorted(variants, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE)


def _userinfo(match: re.Match[str]) -> str:
    if match["pw"] is not None:
        return f"{match['scheme']}{match['user']}:{MARK}@"
    # No password: the user part alone is often a token (https://<token>@host).
    return f"{match['scheme']}{MARK}@" if match["user"] else match[0]


def _keep_name(match: re.Match[str]) -> str:
    quote_char = match["quote"] or ""
    return f"{match['name']}{quote_char}{MARK}{quote_char}"


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: max(limit - len(_ELLIPSIS), 0)]
    # Cut before a token that the limit splits, not inside it: half a key is
    # still a leak, and no longer recognisable as one.
    end = len(head)
    if text[end] in _TOKEN_CHARS:
        while end and head[end - 1] in _TOKEN_CHARS:
            end -= 1
    return head[:end].rstrip() + _ELLIPSIS


class RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """A standard-library logger whose records carry no credential.

    Network libraries log at DEBUG what they send and receive: ``websockets``
    logs each header of the handshake (the API key among them) and each frame
    (a server's error may echo the key). Hand such a library this adapter as
    its logger (``websockets.connect(..., logger=RedactingLogger(
    "websockets.client", [key]))``): every argument of a record is redacted
    before any handler sees it. Numbers stay numbers (``%d`` formats them).
    A text frame is redacted before it is rendered, because its rendering is
    cut short, perhaps in the middle of an echoed key that redacting the
    shortened text would then miss.

    Args:
        name: The logger to wrap.
        secrets: The credentials to take out.
    """

    def __init__(self, name: str, secrets: Iterable[str]) -> None:
        super().__init__(logging.getLogger(name), {})
        self._secrets = [secret for secret in secrets if secret]

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return msg, kwargs  # keep the caller's ``extra``

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            if isinstance(msg, str) and any(secret in msg for secret in self._secrets):
                msg = redact(msg, self._secrets, limit=None)  # "[redacted]" holds no "%"
            args = tuple(self._clean(arg) for arg in args)
            # The record's caller is the library's code, one frame further up.
            kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
            super().log(level, msg, *args, **kwargs)

    def _clean(self, value: object) -> object:
        if value is None or isinstance(value, int | float):
            return value
        value = _redacted_frame(value, self._secrets)
        text = bytes(value).decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else str(value)
        return redact(text, self._secrets, limit=None)


def _redacted_frame(value: object, secrets: list[str]) -> object:
    """A text frame (``websockets.frames.Frame``) with its payload redacted; anything else as it is."""
    data = getattr(value, "data", None)
    opcode = getattr(getattr(value, "opcode", None), "name", None)
    if opcode != "TEXT" or not isinstance(data, bytes | bytearray) or not dataclasses.is_dataclass(value):
        return value
    if isinstance(value, type):
        return value
    cleaned = redact(bytes(data).decode("utf-8", "replace"), secrets, limit=None)
    return dataclasses.replace(value, data=cleaned.encode())
