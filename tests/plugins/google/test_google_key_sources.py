"""Where the key comes from: keywords, the provider's own variable, the SDKs' variables;
each variable from the environment or a ``.env`` file, for both providers."""

from __future__ import annotations

from pathlib import Path

import pytest
from gemini_live_helpers import make_live
from gemini_live_server import API_KEY as LIVE_KEY
from gemini_live_server import LiveServer
from gemini_rest_server import API_KEY as REST_KEY
from gemini_rest_server import RestServer, StreamReply, text_chunks

from vocalis.chat import ChatContext, ChatRole
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis_google import GeminiLive, GeminiLLM

Provider = type[GeminiLLM] | type[GeminiLive]
BOTH = pytest.mark.parametrize("cls", [GeminiLLM, GeminiLive], ids=["llm", "live"])
OWN = {GeminiLLM: "VOCALIS_LLM_GOOGLE_API_KEY", GeminiLive: "VOCALIS_REALTIME_GOOGLE_API_KEY"}


def dotenv(tmp_path: Path, **values: str) -> Path:
    path = tmp_path / ".env"
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()), encoding="utf-8")
    return path


def key_of(provider: GeminiLLM | GeminiLive) -> str | None:
    key = provider.settings.api_key
    return key.get_secret_value() if key is not None else None


@BOTH
@pytest.mark.parametrize("name", ["GOOGLE_API_KEY", "GEMINI_API_KEY", "google_api_key"])
def test_the_sdk_variables_in_a_dotenv_file(cls: Provider, name: str, tmp_path: Path) -> None:
    env_file = dotenv(tmp_path, **{name: "AIza-from-file"})
    assert key_of(cls(_env_file=env_file)) == "AIza-from-file"


@BOTH
def test_the_default_dotenv_of_the_working_directory(
    cls: Provider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv(tmp_path, GEMINI_API_KEY="AIza-cwd-file")
    monkeypatch.chdir(tmp_path)
    assert key_of(cls()) == "AIza-cwd-file"
    assert key_of(cls(api_key=None)) == "AIza-cwd-file"  # None is "not given", as in the SDKs
    assert key_of(cls(_env_file=None)) is None  # no file read: nothing found


@BOTH
def test_the_providers_own_variable_with_its_prefix(cls: Provider, tmp_path: Path) -> None:
    other = next(name for provider, name in OWN.items() if provider is not cls)
    env_file = dotenv(tmp_path, **{other: "AIza-the-other-providers", OWN[cls]: "AIza-own-file"})
    assert key_of(cls(_env_file=env_file)) == "AIza-own-file"
    only_other = dotenv(tmp_path, **{other: "AIza-the-other-providers", "API_KEY": "AIza-unprefixed"})
    assert key_of(cls(_env_file=only_other)) is None  # neither another prefix nor none at all


@BOTH
def test_which_wins(cls: Provider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyword, own variable (environment, then file), GOOGLE_ then GEMINI_
    (environment, then file): a project's own setting beats a shell-wide key."""
    env_file = dotenv(tmp_path, GOOGLE_API_KEY="g-file", GEMINI_API_KEY="gem-file")
    assert key_of(cls(_env_file=env_file)) == "g-file"
    monkeypatch.setenv("GEMINI_API_KEY", "gem-env")
    assert key_of(cls(_env_file=env_file)) == "gem-env"
    monkeypatch.setenv("GOOGLE_API_KEY", "g-env")
    assert key_of(cls(_env_file=env_file)) == "g-env"
    env_file = dotenv(tmp_path, **{OWN[cls]: "own-file", "GOOGLE_API_KEY": "g-file"})
    assert key_of(cls(_env_file=env_file)) == "own-file"
    monkeypatch.setenv(OWN[cls], "own-env")
    assert key_of(cls(_env_file=env_file)) == "own-env"
    monkeypatch.setenv(OWN[cls], "")  # empty is not set: the next one found
    assert key_of(cls(_env_file=env_file)) == "own-file"
    assert key_of(cls(_env_file=env_file, api_key="keyword")) == "keyword"


@BOTH
def test_the_key_stays_secret(cls: Provider, tmp_path: Path) -> None:
    provider = cls(_env_file=dotenv(tmp_path, GOOGLE_API_KEY="AIza-very-secret-value"))
    shown = [repr(provider), repr(provider.settings), str(provider.settings.model_dump())]
    assert not [text for text in shown if "very-secret" in text]


async def test_a_request_carries_the_key_from_the_file(tmp_path: Path, rest: RestServer) -> None:
    rest.queue(StreamReply(text_chunks(["Hi."], finish="STOP")))
    llm = GeminiLLM(base_url=rest.url, max_retries=0, _env_file=dotenv(tmp_path, GOOGLE_API_KEY=REST_KEY))
    ctx = ChatContext()
    ctx.add_message(ChatRole.USER, "Hello?")
    try:
        text = "".join([chunk.text async for chunk in llm.chat(ctx)])
    finally:
        await llm.aclose()
    assert text == "Hi." and rest.requests[0].headers["x-goog-api-key"] == REST_KEY


async def test_a_live_connect_carries_the_key_from_the_file(tmp_path: Path, live: LiveServer) -> None:
    model = make_live(live, api_key=None, _env_file=dotenv(tmp_path, GEMINI_API_KEY=LIVE_KEY))
    session = await model.connect(instructions="Be brief.")
    await session.aclose()
    await model.aclose()
    assert live.handshakes[0][1]["x-goog-api-key"] == LIVE_KEY


@BOTH
async def test_no_key_anywhere_names_every_variable(cls: Provider, tmp_path: Path) -> None:
    provider = cls(base_url="http://127.0.0.1:9", _env_file=dotenv(tmp_path, API_KEY="AIza-unprefixed"))
    with pytest.raises(ProviderError) as caught:
        if isinstance(provider, GeminiLLM):
            ctx = ChatContext()
            ctx.add_message(ChatRole.USER, "Hello?")
            async for _ in provider.chat(ctx):
                pass
        else:
            await provider.connect(instructions="Be brief.")
    await provider.aclose()
    error = caught.value
    assert (error.kind, error.recoverable) == (ErrorKind.AUTH, False)
    for name in (OWN[cls], "GOOGLE_API_KEY", "GEMINI_API_KEY", ".env"):
        assert name in str(error)
