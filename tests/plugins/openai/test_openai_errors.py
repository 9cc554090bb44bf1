"""The openai plugin's error mapping, fed the exceptions of every SDK style.

Older SDKs let a failure while reading a streamed body out of the HTTP
library as is (``httpx2.RemoteProtocolError``, ``httpx2.ReadTimeout``); newer
ones wrap it (``APIConnectionError``, ``APITimeoutError``). Both must read the
same, so both are fed here whatever version is installed. Assertions go by
kind, recoverability and our own wording only.
"""

from __future__ import annotations

import httpx2
import openai
import pytest

from vocalis.providers.base import ErrorKind
from vocalis_openai import OpenAILLM
from vocalis_openai.client import provider_error, status_kind

REQUEST = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


@pytest.fixture
def llm() -> OpenAILLM:
    return OpenAILLM(base_url="http://127.0.0.1:9/v1", api_key="k", timeout=7, _env_file=None)


def _wrapped(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    "exc",
    [
        httpx2.RemoteProtocolError("peer closed connection", request=REQUEST),
        httpx2.ReadError("reset", request=REQUEST),
        _wrapped(
            openai.APIConnectionError(request=REQUEST),
            httpx2.RemoteProtocolError("peer closed connection", request=REQUEST),
        ),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_drop_reads_by_phase_not_by_class(llm: OpenAILLM, exc: BaseException) -> None:
    during = provider_error(llm, exc, started=True)
    before = provider_error(llm, exc, started=False)
    for error in (during, before):
        assert error.kind is ErrorKind.CONNECTION and error.recoverable
        assert error.provider == "llm:openai"
    assert str(during).startswith("llm:openai: connection lost mid-stream")
    assert str(before).startswith("llm:openai: connection failed")


@pytest.mark.parametrize(
    "exc",
    [
        httpx2.ReadTimeout("timed out", request=REQUEST),
        _wrapped(openai.APITimeoutError(request=REQUEST), httpx2.ReadTimeout("x", request=REQUEST)),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_timeout_reads_by_phase_not_by_class(llm: OpenAILLM, exc: BaseException) -> None:
    during = provider_error(llm, exc, started=True)
    before = provider_error(llm, exc, started=False)
    assert during.kind is ErrorKind.STALLED and during.recoverable
    assert str(during) == "llm:openai: the stream stalled: nothing arrived for 7 s"
    assert before.kind is ErrorKind.TIMEOUT and before.recoverable
    assert "timed out: no answer within 7 s" in str(before)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ErrorKind.BAD_REQUEST),
        (401, ErrorKind.AUTH),
        (403, ErrorKind.AUTH),
        (404, ErrorKind.BAD_REQUEST),
        (408, ErrorKind.TIMEOUT),
        (413, ErrorKind.BAD_REQUEST),
        (422, ErrorKind.BAD_REQUEST),
        (429, ErrorKind.RATE_LIMIT),
        (500, ErrorKind.SERVER),
        (503, ErrorKind.SERVER),
    ],
)
def test_status_kinds(status: int, kind: ErrorKind) -> None:
    assert status_kind(status) is kind


def test_a_status_error_keeps_the_servers_words(llm: OpenAILLM) -> None:
    body = {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}
    response = httpx2.Response(429, request=REQUEST)
    exc = openai.RateLimitError("whatever the SDK says", response=response, body=body)
    error = provider_error(llm, exc, started=False)
    assert error.kind is ErrorKind.RATE_LIMIT and error.recoverable
    assert str(error) == "llm:openai: HTTP 429: slow down"


def test_malformed_data_is_a_protocol_error(llm: OpenAILLM) -> None:
    error = provider_error(llm, ValueError("Expecting value"), started=True)
    assert error.kind is ErrorKind.PROTOCOL and error.recoverable
    assert str(error).startswith("llm:openai: malformed stream event")


def test_anything_else_is_unknown(llm: OpenAILLM) -> None:
    error = provider_error(llm, RuntimeError("boom"), started=True)
    assert error.kind is ErrorKind.UNKNOWN and error.recoverable
    assert str(error).startswith("llm:openai: unexpected failure")
