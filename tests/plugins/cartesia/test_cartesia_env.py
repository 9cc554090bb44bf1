"""Where the key comes from: ``VOCALIS_TTS_CARTESIA_API_KEY`` or the SDK's
``CARTESIA_API_KEY``, each from the environment or ``.env``; a key given in code wins."""

from __future__ import annotations

from pathlib import Path

import pytest
from cartesia_server import API_KEY, CartesiaServer

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis_cartesia import CartesiaTTS


def _key(tts: CartesiaTTS) -> str | None:
    key = tts.settings.api_key
    return None if key is None else key.get_secret_value()


def _dotenv(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / ".env"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_sdk_variable_is_read_from_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default ``.env``, in the working directory
    _dotenv(tmp_path, "CARTESIA_API_KEY=sk_car_from-dotenv-12345678")
    tts = CartesiaTTS()
    assert _key(tts) == tts.api_key() == "sk_car_from-dotenv-12345678"
    assert "sk_car_from-dotenv" not in repr(tts)


def test_the_own_variable_wins_over_the_sdks_in_one_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _dotenv(tmp_path, "CARTESIA_API_KEY=sk_car_sdk-12345678", "VOCALIS_TTS_CARTESIA_API_KEY=sk_car_own-12345678")
    assert _key(CartesiaTTS(_env_file=env)) == "sk_car_own-12345678"
    monkeypatch.setenv("CARTESIA_API_KEY", "sk_car_sdk-env-12345678")
    monkeypatch.setenv("VOCALIS_TTS_CARTESIA_API_KEY", "sk_car_own-env-12345678")
    assert _key(CartesiaTTS(_env_file=None)) == "sk_car_own-env-12345678"


def test_a_key_given_in_code_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _dotenv(tmp_path, "VOCALIS_TTS_CARTESIA_API_KEY=sk_car_dotenv-12345678")
    monkeypatch.setenv("CARTESIA_API_KEY", "sk_car_environ-12345678")
    tts = CartesiaTTS(_env_file=env, api_key="sk_car_code-12345678")
    assert _key(tts) == "sk_car_code-12345678"
    # Rebuilt from ready settings plus overrides, as the core does: the key is kept.
    again = CartesiaTTS(settings=tts.settings, model_id="sonic-2")
    assert (_key(again), again.settings.model_id) == ("sk_car_code-12345678", "sonic-2")
    # None (``os.getenv`` of an unset variable) gives no key: the environment's is used.
    assert _key(CartesiaTTS(_env_file=None, api_key=None)) == "sk_car_environ-12345678"


def test_no_key_anywhere_names_both_variables(tmp_path: Path) -> None:
    tts = CartesiaTTS(_env_file=_dotenv(tmp_path, "VOCALIS_TTS_CARTESIA_MODEL_ID=sonic-2"))
    with pytest.raises(ProviderError) as info:
        tts.api_key()
    assert (info.value.kind, info.value.recoverable) == (ErrorKind.AUTH, False)
    assert "VOCALIS_TTS_CARTESIA_API_KEY" in str(info.value) and "CARTESIA_API_KEY" in str(info.value)


async def test_a_key_from_dotenv_is_sent(server: CartesiaServer, tmp_path: Path) -> None:
    env = _dotenv(tmp_path, f"CARTESIA_API_KEY={API_KEY}", f"VOCALIS_TTS_CARTESIA_BASE_URL={server.url}")
    tts = CartesiaTTS(_env_file=env)
    try:
        await tts.prewarm()  # the WebSocket handshake: the server refuses any other key
        assert [frame async for frame in tts.synthesize("Hello there.")]  # and the HTTP request
    finally:
        await tts.aclose()
    assert server.handshakes and server.bytes_requests
