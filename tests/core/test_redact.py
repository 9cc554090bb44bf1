"""Credentials never leave in error text: redact(), describe_cause() and the session's ``error`` event.

Upstream error text (an HTTP body, an SDK message) goes into provider errors,
the log and the ``error`` event that ``vocalis serve`` forwards to the remote
client; a gateway that echoes the request's key in its 401 reply would leak
it. The properties: a given secret embedded anywhere in any text (raw,
URL-encoded or JSON-escaped) never survives, the result is never longer than
the limit, and a cut never keeps half a token.
"""

from __future__ import annotations

import json
import string
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from session_helpers import conversation

from vocalis.providers.base import ProviderError, describe_cause
from vocalis.providers.fallback import FallbackLLM
from vocalis.providers.redact import MARK, MIN_SECRET_LENGTH, provider_secrets, redact, settings_secrets
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis.testing import FakeLLM, FakeResponse, OutputCapture, run_virtual

PROPERTY = settings(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])

# What API keys are made of, plus characters that URL encoding changes.
KEY_ALPHABET = string.ascii_letters + string.digits + "-_.~/+=:"
ENCODINGS = {
    "raw": lambda s: s,
    "url": lambda s: quote(s, safe=""),
    "url-path": quote,
    "form": quote_plus,
    "json": lambda s: json.dumps(s)[1:-1],
    "json-slash": lambda s: s.replace("/", "\\/"),
    "upper": str.upper,
}


class _KeyedSettings(ProviderSettings):
    """Settings that hold credentials the way provider settings do."""

    model_config = provider_settings_config("llm", "keyed")
    api_key: SecretStr | None = None
    headers: dict[str, str] = {}
    model: str = "some-model"


# -- credential shapes ------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("401: Authorization: Bearer gw-echo-1a2b3c4d5e6f", "gw-echo-1a2b3c4d5e6f"),
        ('{"headers": {"Authorization": "Basic dXNlcjpodW50ZXIy"}}', "dXNlcjpodW50ZXIy"),
        ("proxy-authorization=Token abc123def456", "abc123def456"),
        ("rejected the bearer token bearer eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0", "eyJhbGciOi"),
        ("Cookie: session=7f3a9c0e; csrftoken=99d1e2\nnext line", "7f3a9c0e"),
        ("query failed: api_key=plainvalue123&model=x", "plainvalue123"),
        ('{"api_key": "quoted value with spaces"}', "quoted value with spaces"),
        ("{'x-api-key': 'headerkey0987'}", "headerkey0987"),
        ("X-Goog-Api-Key: AIzaSyExampleExample0000", "AIzaSyExampleExample0000"),
        ("token=opaque-0451 was refused", "opaque-0451"),
        ('"client_secret": "cs_live_123"', "cs_live_123"),
        ("password: hunter2hunter2", "hunter2hunter2"),
        ("GET https://api.example/v1/models?key=k3y-in-the-url&alt=json", "k3y-in-the-url"),
        ("GET /v1?X-Amz-Signature=a1b2c3d4e5&X-Amz-Credential=AKIDEXAMPLE", "a1b2c3d4e5"),
        ("GET /v1?X-Amz-Signature=a1b2c3d4e5&X-Amz-Credential=AKIDEXAMPLE", "AKIDEXAMPLE"),
        ("cannot reach redis://default:s3cr3tpass@cache:6379/0", "s3cr3tpass"),
        ("clone https://ghp_abcdefghijklmnopqrstuvwxyz0123@github.example/x", "ghp_abcdefghij"),
        ("Incorrect API key provided: sk-proj-Ab12Cd34Ef56Gh78Ij90.", "sk-proj-Ab12Cd34Ef56Gh78Ij90"),
        ("invalid x-api-key sk-ant-api03-AbCdEfGhIjKlMnOpQrSt-uvwx", "sk-ant-api03-AbCdEf"),
        ("key AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOp is invalid", "AIzaSyA1b2C3d4E5f6"),
        ("aws AKIAIOSFODNN7EXAMPLE denied", "AKIAIOSFODNN7EXAMPLE"),
        ("hf_AbCdEfGhIjKlMnOpQrStUv expired", "hf_AbCdEfGhIjKlMnOpQrStUv"),
    ],
)
def test_credential_shapes_are_redacted_whatever_the_provider(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out and MARK in out


def test_the_name_of_what_was_redacted_stays_readable() -> None:
    assert redact("Authorization: Bearer abcdefgh1234") == f"Authorization: {MARK}"
    assert redact("got Bearer abcdefgh1234 back") == f"got Bearer {MARK} back"
    assert redact('{"api_key": "v4lue"}') == f'{{"api_key": "{MARK}"}}'
    assert redact("postgres://app:pw@db/x") == f"postgres://app:{MARK}@db/x"
    assert redact("https://tok3n@host/x") == f"https://{MARK}@host/x"
    assert redact("GET /m?alt=json&key=v&n=1") == f"GET /m?alt=json&key={MARK}&n=1"


@pytest.mark.parametrize(
    "text",
    [
        "HTTP 404 from http://127.0.0.1:8080/v1/chat/completions: model 'test-model' not found",
        "HTTP 401 authentication_error: invalid x-api-key",
        '{"error": {"type": "invalid_request_error", "code": "invalid_api_key", "message": "Incorrect API key"}}',
        "no API key: set VOCALIS_LLM_OPENAI_API_KEY or OPENAI_API_KEY",
        "max_tokens=1024 is more than the model allows; max_completion_tokens: 512",
        "request timed out: no answer within 30 s (ReadTimeout: timed out)",
        "error: missing Bearer token",
        "the task-runner failed: rate_limit_error (429): slow down",
        "GET http://127.0.0.1:9/v1/models?alt=json&max_tokens=5 failed",
        "user@example.com wrote: see https://docs.example/errors#auth",
    ],
)
def test_ordinary_error_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


# -- given secrets ---------------------------------------------------------------
@PROPERTY
@given(
    before=st.text(max_size=300),
    secret=st.text(KEY_ALPHABET, min_size=MIN_SECRET_LENGTH, max_size=80),
    after=st.text(max_size=300),
    encoding=st.sampled_from(sorted(ENCODINGS)),
    limit=st.sampled_from([None, 500, 40]),
)
@example(before="x", secret="ab/cd+ef=gh", after="y", encoding="url", limit=None)
@example(before="a" * 30, secret="0123456789abcdef", after="tail", encoding="raw", limit=40)
def test_a_given_secret_embedded_anywhere_never_survives(
    before: str, secret: str, after: str, encoding: str, limit: int | None
) -> None:
    if secret.lower() == "redacted":
        return  # it "survives" as part of the mark
    embedded = ENCODINGS[encoding](secret)
    out = redact(before + embedded + after, [secret], limit=limit)
    assert secret not in out and embedded not in out
    if limit is not None:
        assert len(out) <= limit


@PROPERTY
@given(
    secrets=st.lists(st.text(KEY_ALPHABET, min_size=MIN_SECRET_LENGTH, max_size=40), min_size=1, max_size=4),
    pieces=st.lists(st.text(max_size=50), min_size=1, max_size=6),
)
def test_several_secrets_repeated_and_overlapping_all_go(secrets: list[str], pieces: list[str]) -> None:
    text = ""
    for n, piece in enumerate(pieces):
        text += piece + secrets[n % len(secrets)] + secrets[(n + 1) % len(secrets)][:5]
    out = redact(text, secrets, limit=None)
    for secret in secrets:
        if secret.lower() not in MARK.lower():
            assert secret not in out


def test_short_and_empty_secrets_do_not_shred_the_text() -> None:
    text = "HTTP 401: Incorrect API key provided for model gpt"
    assert redact(text, ["", "a", "gpt", "no-key"]) == text
    assert MIN_SECRET_LENGTH >= 8


def test_a_longer_secret_containing_a_shorter_one_goes_whole() -> None:
    out = redact("got abcdefgh12345678 and abcdefgh", ["abcdefgh", "abcdefgh12345678"])
    assert out == f"got {MARK} and {MARK}"


# -- length ------------------------------------------------------------------------
@PROPERTY
@given(text=st.text(max_size=2000), limit=st.integers(min_value=1, max_value=600))
def test_the_result_never_exceeds_the_limit(text: str, limit: int) -> None:
    out = redact(text, limit=limit)
    assert len(out) <= limit
    assert out == redact(text, limit=None) or out.endswith("…")


def test_a_huge_html_page_is_cut_to_500_characters() -> None:
    page = "<html><body>" + "<p>Unauthorized request, please check your settings.</p>" * 2000 + "</body></html>"
    out = redact(page)
    assert len(out) <= 500 and out.endswith("…") and out.startswith("<html><body><p>Unauthorized")
    assert redact(page, limit=None) == page


@PROPERTY
@given(words=st.integers(min_value=0, max_value=120), token_length=st.integers(min_value=1, max_value=80))
def test_a_cut_never_keeps_part_of_a_token(words: int, token_length: int) -> None:
    # An opaque token nobody recognises (no prefix, not given): if the limit
    # falls inside it, none of it is kept.
    token = ("QZ7" * 30)[:token_length]
    out = redact("word " * words + token + " tail" * 200)
    kept = out.removesuffix("…")
    assert "Q" not in kept or token in kept


# -- where it is applied -------------------------------------------------------------
def test_describe_cause_redacts_the_deepest_cause() -> None:
    try:
        try:
            raise ConnectionError("reply: Authorization: Bearer gw-echo-0a1b2c3d4e5f, key=" + "x9" * 400)
        except ConnectionError as inner:
            raise RuntimeError("wrapper") from inner
    except RuntimeError as exc:
        text = describe_cause(exc, ["x9" * 400])
    assert text.startswith(" (ConnectionError: reply: Authorization: [redacted]")
    assert "gw-echo" not in text and "x9x9" not in text and len(text) < 560


def test_settings_secrets_finds_keys_header_values_and_bearer_tokens() -> None:
    keyed = _KeyedSettings(
        api_key=SecretStr("sk-test-0123456789"),
        headers={"X-Gateway-Key": "gw-key-5e2f7a0b19c3", "Authorization": "Bearer tok-abcdef123456"},
        _env_file=None,
    )
    found = settings_secrets(keyed)
    assert {"sk-test-0123456789", "gw-key-5e2f7a0b19c3", "Bearer tok-abcdef123456", "tok-abcdef123456"} <= set(found)
    assert "some-model" not in found
    assert settings_secrets(None) == [] and settings_secrets(object()) == []


def test_provider_secrets_looks_inside_a_fallback() -> None:
    first = FakeLLM(["a"], settings=_KeyedSettings(api_key=SecretStr("first-key-0123456"), _env_file=None))
    second = FakeLLM(["b"], settings=_KeyedSettings(headers={"X-Key": "second-key-789012"}, _env_file=None))
    fallback = FallbackLLM([first, second])
    assert {"first-key-0123456", "second-key-789012"} <= set(provider_secrets([fallback, fallback]))


def test_the_session_error_event_and_log_carry_no_key() -> None:
    """Defence in depth: a provider error quoting the key, however it was made,
    is redacted by ``report_error`` before the log and the ``error`` event."""
    key, gateway = "gw-0a1b2c3d4e5f6a7b", "Bearer eyJhbGciOiJIUzI1.eyJzdWIiOiIxMjM0.c2lnbmF0dXJl"
    echo = f"HTTP 401: your key {key} is refused; Authorization: {gateway}; body " + "<p>x</p>" * 500
    llm = FakeLLM(
        [FakeResponse(error=ProviderError(echo, provider="llm:fake", recoverable=False))],
        settings=_KeyedSettings(api_key=SecretStr(key), _env_file=None),
    )

    async def main() -> None:
        conv = conversation(llm=llm)
        with OutputCapture() as capture:
            capture.watch(conv.session)
            async with conv:
                await conv.session.send_text("hello?")
                await conv.wait_for(lambda: bool(conv.errors()))
        (error,) = conv.errors()
        assert error["source"] == "llm:fake" and error["message"].startswith("HTTP 401: your key [redacted]")
        assert len(error["message"]) <= 500
        assert "llm:fake failed: HTTP 401" in capture.outputs()["loguru"]
        capture.assert_absent([key, gateway.removeprefix("Bearer ")])

    run_virtual(main())


# -- RedactingLogger: what a network library logs at DEBUG -------------------------
import dataclasses
import enum
import logging

from vocalis.providers.redact import RedactingLogger


class _Opcode(enum.Enum):
    TEXT = 1
    BINARY = 2


@dataclasses.dataclass(frozen=True)
class _Frame:
    """Shaped like websockets' Frame: its rendering is cut short in the middle."""

    opcode: _Opcode
    data: bytes

    def __str__(self) -> str:
        text = self.data.decode()
        return f"TEXT {text[:40]!r}...{text[-30:]!r} [{len(self.data)} bytes]"


KEY = "sk-live-" + "Q7" * 20


def test_the_logger_redacts_headers_bytes_and_messages_and_keeps_numbers(caplog: pytest.LogCaptureFixture) -> None:
    log = RedactingLogger("websockets.client", [KEY])
    with caplog.at_level(logging.DEBUG, logger="websockets.client"):
        log.debug("> %s: %s", "Authorization", f"Token {KEY}")
        log.debug("> TEXT %r [%d bytes]", KEY.encode(), 42)
        log.debug(f"! failed with key {KEY}")
    assert len(caplog.records) == 3 and "[42 bytes]" in caplog.text and "Authorization" in caplog.text
    assert KEY not in caplog.text and "Q7Q7Q7Q7" not in caplog.text


def test_a_long_text_frame_is_redacted_before_its_rendering_is_cut_short(caplog: pytest.LogCaptureFixture) -> None:
    frame = _Frame(_Opcode.TEXT, ("x" * 60 + f'{{"error": "bad key {KEY}"}}').encode())
    assert "Q7Q7Q7Q7" in str(frame)  # the shortened rendering keeps the key's tail, which exact matching misses
    with caplog.at_level(logging.DEBUG, logger="websockets.client"):
        RedactingLogger("websockets.client", [KEY]).debug("< %s", frame)
    assert caplog.records and "Q7Q7Q7Q7" not in caplog.text and "[redacted]" in caplog.text
    binary = _Frame(_Opcode.BINARY, b"\x00\x01")
    with caplog.at_level(logging.DEBUG, logger="websockets.client"):
        RedactingLogger("websockets.client", [KEY]).debug("< %s", binary)  # left as it is
