"""Where the settings come from: the key under either name, from the environment or
``.env``; values given in code win; ``base_url`` is the hosted API unless set."""

from __future__ import annotations

from pathlib import Path

import pytest
from deepgram_helpers import utterance
from deepgram_listen_server import ListenServer
from deepgram_server_base import API_KEY

from vocalis_deepgram import DeepgramSTT, DeepgramTTS
from vocalis_deepgram.client import HOSTED_URL


def _key(provider: DeepgramSTT | DeepgramTTS) -> str | None:
    key = provider.settings.api_key
    return None if key is None else key.get_secret_value()


def _dotenv(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / ".env"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_vendor_variable_is_read_from_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default ``.env``, in the working directory
    _dotenv(tmp_path, "DEEPGRAM_API_KEY=dg-from-dotenv-1234567890")
    stt, tts = DeepgramSTT(), DeepgramTTS()
    assert _key(stt) == _key(tts) == "dg-from-dotenv-1234567890"
    assert stt.auth_headers() == {"Authorization": "Token dg-from-dotenv-1234567890"}
    assert "dg-from-dotenv" not in repr(stt) + repr(tts)


def test_each_providers_own_variable_from_dotenv_wins_over_the_vendors(tmp_path: Path) -> None:
    env = _dotenv(
        tmp_path,
        "DEEPGRAM_API_KEY=dg-vendor-key-1234567890",
        "VOCALIS_STT_DEEPGRAM_API_KEY=dg-stt-own-key-1234567890",
        "VOCALIS_TTS_DEEPGRAM_BASE_URL=http://127.0.0.1:9/v1",
    )
    stt, tts = DeepgramSTT(_env_file=env), DeepgramTTS(_env_file=env)
    assert _key(stt) == "dg-stt-own-key-1234567890"
    assert _key(tts) == "dg-vendor-key-1234567890"
    assert (stt.settings.base_url, tts.settings.base_url) == (HOSTED_URL, "http://127.0.0.1:9/v1")


def test_both_names_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-vendor-env-1234567890")
    assert _key(DeepgramSTT(_env_file=None)) == "dg-vendor-env-1234567890"
    monkeypatch.setenv("VOCALIS_TTS_DEEPGRAM_API_KEY", "dg-tts-env-1234567890")
    assert _key(DeepgramTTS(_env_file=None)) == "dg-tts-env-1234567890"
    assert _key(DeepgramSTT(_env_file=None)) == "dg-vendor-env-1234567890"


def test_a_key_given_in_code_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _dotenv(tmp_path, "VOCALIS_STT_DEEPGRAM_API_KEY=dg-dotenv-key-1234567890")
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-environ-key-1234567890")
    stt = DeepgramSTT(_env_file=env, api_key="dg-code-key-1234567890")
    assert _key(stt) == "dg-code-key-1234567890"
    # Rebuilt from ready settings plus overrides, as the core does: the key is kept.
    again = DeepgramSTT(settings=stt.settings, model="nova-2")
    assert (_key(again), again.settings.model) == ("dg-code-key-1234567890", "nova-2")
    # None (``os.getenv`` of an unset variable) gives no key: the environment's is used.
    assert _key(DeepgramSTT(_env_file=None, api_key=None)) == "dg-environ-key-1234567890"


def test_base_url_is_the_hosted_api_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    stt = DeepgramSTT(_env_file=None)
    assert stt.settings.base_url == HOSTED_URL and f"base_url='{HOSTED_URL}'" in repr(stt.settings)
    assert stt.ws_url("/v1/listen") == "wss://api.deepgram.com/v1/listen"
    monkeypatch.setenv("VOCALIS_TTS_DEEPGRAM_BASE_URL", "")  # set but empty: unset
    assert DeepgramTTS(_env_file=None).settings.base_url == HOSTED_URL
    assert DeepgramTTS(_env_file=None, base_url="ws://127.0.0.1:8080/v1/").root_url() == "http://127.0.0.1:8080"


async def test_a_key_from_dotenv_is_sent(listen: ListenServer, tmp_path: Path) -> None:
    env = _dotenv(tmp_path, f"DEEPGRAM_API_KEY={API_KEY}", f"VOCALIS_STT_DEEPGRAM_BASE_URL={listen.url}")
    stt = DeepgramSTT(_env_file=env)
    frames, _ = utterance(0)
    try:
        assert (await stt.recognize(frames)).text  # the server refuses any other key
    finally:
        await stt.aclose()
