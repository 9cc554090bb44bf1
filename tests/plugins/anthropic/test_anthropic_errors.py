"""The anthropic plugin's error mapping, fed the exceptions of every SDK style.

SDK versions differ in which class a failure surfaces as: up to 2.14 a
connection dropped or stalled mid-stream comes out of the HTTP library as is
(``httpx2.RemoteProtocolError``, ``httpx2.ReadTimeout``); from 2.17 the SDK
wraps it (``APIConnectionError``, ``APITimeoutError``). Both must read the
same, so both are fed here whatever version is installed. Assertions go by
kind, recoverability and our own wording only.
"""

from __future__ import annotations

import anthropic
import httpx2
import pytest

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis_anthropic import AnthropicLLM
from vocalis_anthropic.errors import NO_CREDENTIALS, provider_error, status_kind

REQUEST = httpx2.Request("POST", "http://127.0.0.1:9/v1/messages")


@pytest.fixture
def llm() -> AnthropicLLM:
    return AnthropicLLM(api_key="sk-ant-unit", timeout=7, _env_file=None)


def _wrapped(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


def _drops() -> list[BaseException]:
    return [
        httpx2.RemoteProtocolError("peer closed connection", request=REQUEST),
        httpx2.ReadError("reset", request=REQUEST),
        _wrapped(
            anthropic.APIConnectionError(request=REQUEST),
            httpx2.RemoteProtocolError("peer closed connection", request=REQUEST),
        ),
    ]


def _timeouts() -> list[BaseException]:
    return [
        httpx2.ReadTimeout("timed out", request=REQUEST),
        _wrapped(anthropic.APITimeoutError(REQUEST), httpx2.ReadTimeout("x", request=REQUEST)),
    ]


@pytest.mark.parametrize("exc", _drops(), ids=lambda e: type(e).__name__)
def test_a_drop_reads_by_phase_not_by_class(llm: AnthropicLLM, exc: BaseException) -> None:
    during = provider_error(llm, exc, started=True)
    before = provider_error(llm, exc, started=False)
    for error in (during, before):
        assert error.kind is ErrorKind.CONNECTION and error.recoverable
        assert error.provider == "llm:anthropic"
    assert str(during).startswith("llm:anthropic: connection lost mid-stream")
    assert str(before).startswith("llm:anthropic: connection failed")


@pytest.mark.parametrize("exc", _timeouts(), ids=lambda e: type(e).__name__)
def test_a_timeout_reads_by_phase_not_by_class(llm: AnthropicLLM, exc: BaseException) -> None:
    during = provider_error(llm, exc, started=True)
    before = provider_error(llm, exc, started=False)
    assert during.kind is ErrorKind.STALLED and during.recoverable
    assert str(during) == "llm:anthropic: the stream stalled: nothing arrived for 7 s"
    assert before.kind is ErrorKind.TIMEOUT and before.recoverable
    assert str(before) == "llm:anthropic: request timed out: no answer within 7 s"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ErrorKind.BAD_REQUEST),
        (401, ErrorKind.AUTH),
        (403, ErrorKind.AUTH),
        (404, ErrorKind.BAD_REQUEST),
        (413, ErrorKind.BAD_REQUEST),
        (422, ErrorKind.BAD_REQUEST),
        (429, ErrorKind.RATE_LIMIT),
        (500, ErrorKind.SERVER),
        (502, ErrorKind.SERVER),
        (529, ErrorKind.RATE_LIMIT),
    ],
)
def test_status_kinds(status: int, kind: ErrorKind) -> None:
    assert status_kind(status) is kind


def test_an_error_event_is_read_by_its_type(llm: AnthropicLLM) -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    response = httpx2.Response(200, request=REQUEST)
    exc = anthropic.APIStatusError("whatever the SDK says", response=response, body=body)
    error = provider_error(llm, exc, started=True)
    assert error.kind is ErrorKind.RATE_LIMIT and error.recoverable
    assert str(error) == "llm:anthropic: error event mid-stream: overloaded_error: busy"


def test_malformed_data_is_a_protocol_error(llm: AnthropicLLM) -> None:
    error = provider_error(llm, ValueError("Expecting value"), started=True)
    assert error.kind is ErrorKind.PROTOCOL and error.recoverable
    assert str(error).startswith("llm:anthropic: malformed stream event")


def test_the_sdks_credentials_error_is_an_auth_error(llm: AnthropicLLM) -> None:
    error = provider_error(llm, anthropic.CredentialsError("profile unreadable"), started=False)
    assert error.kind is ErrorKind.AUTH and not error.recoverable
    assert str(error).startswith(f"llm:anthropic: {NO_CREDENTIALS}")


def test_anything_else_is_unknown(llm: AnthropicLLM) -> None:
    error = provider_error(llm, RuntimeError("boom"), started=True)
    assert error.kind is ErrorKind.UNKNOWN and not error.recoverable
    assert str(error).startswith("llm:anthropic: unexpected failure")
    same = ProviderError("ours", provider="llm:anthropic", kind=ErrorKind.SERVER)
    assert provider_error(llm, same, started=True) is same
