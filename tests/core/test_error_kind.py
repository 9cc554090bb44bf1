"""ErrorKind on ProviderError: the default, Provider.error and the exports."""

from __future__ import annotations

import pickle

import vocalis
import vocalis.providers
from vocalis.providers.base import ErrorKind, Provider, ProviderError, ProviderKind


class _Named(Provider):
    kind = ProviderKind.LLM
    name = "named"


def test_kind_defaults_to_unknown_and_old_calls_still_work() -> None:
    error = ProviderError("boom", provider="llm:x", recoverable=False)
    assert error.kind is ErrorKind.UNKNOWN and not error.recoverable
    assert str(error) == "llm:x: boom"
    assert _Named().error("boom").kind is ErrorKind.UNKNOWN


def test_provider_error_passes_the_kind_through() -> None:
    error = _Named().error("slow down", kind=ErrorKind.RATE_LIMIT)
    assert error.kind is ErrorKind.RATE_LIMIT
    assert error.provider == "llm:named" and error.recoverable
    assert error.kind == "rate_limit"  # a StrEnum: logs and JSON see the plain string


def test_kinds_and_exports() -> None:
    names = "connection timeout stalled auth rate_limit bad_request server protocol unknown"
    assert [kind.value for kind in ErrorKind] == names.split()
    assert vocalis.ErrorKind is ErrorKind and "ErrorKind" in vocalis.__all__
    assert vocalis.providers.ErrorKind is ErrorKind


def test_the_kind_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(ProviderError("x", provider="p", kind=ErrorKind.AUTH)))
    assert error.kind is ErrorKind.AUTH and error.provider == "p"
