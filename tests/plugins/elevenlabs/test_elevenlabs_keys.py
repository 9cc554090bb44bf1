"""Where the key comes from, and where it never goes.

The key is read from ``VOCALIS_TTS_ELEVENLABS_API_KEY`` or ``ELEVENLABS_API_KEY``,
each from the environment or ``.env``; a key given in code wins. An application
that turns on ``logging.basicConfig(level=logging.DEBUG)`` gets websockets'
handshake log (each request header, ``xi-api-key`` included, and each frame):
the capture below is a root handler at DEBUG, as ``basicConfig`` installs.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from elevenlabs_server import API_KEY, ElevenLabsServer

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.testing import OutputCapture
from vocalis_elevenlabs import ElevenLabsTTS

Make = Callable[..., ElevenLabsTTS]
WRONG_KEY = "xi-wrong-key-7d41c2e9b08a5f36"
ECHO = f"Invalid API key {API_KEY}"


def _key(tts: ElevenLabsTTS) -> str | None:
    key = tts.settings.api_key
    return None if key is None else key.get_secret_value()


def _dotenv(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / ".env"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def _speak(tts: ElevenLabsTTS, capture: OutputCapture) -> int:
    stream = tts.stream()
    stream.push_text("Hello there. How are you?")
    stream.end_input()
    count = 0
    try:
        async for _ in stream:
            count += 1
    except ProviderError as exc:
        capture.add("errors", f"{exc!s} {exc!r}")
    await stream.aclose()
    return count


async def test_no_key_in_the_debug_log(make_tts: Make, server: ElevenLabsServer) -> None:
    with OutputCapture() as capture:
        tts = make_tts(transport="websocket")
        await tts.prewarm()
        assert await _speak(tts, capture)  # the socket, with the key in its handshake
        # A server that quotes the key back in an error frame and its close reason.
        server.behaviour.close_after_messages = 2
        server.behaviour.error_message = {"message": ECHO, "error": "invalid_api_key", "code": 1008}
        server.behaviour.close_reason = ECHO
        await _speak(tts, capture)
        # A refused key (closed with 1008), over the socket and at prewarm.
        wrong = make_tts(api_key=WRONG_KEY, transport="websocket")
        await _speak(wrong, capture)
        with pytest.raises(ProviderError) as caught:
            await wrong.prewarm()
        capture.add("errors", f"{caught.value!s} {caught.value!r}")
    capture.assert_absent([API_KEY, WRONG_KEY])
    logged = capture.outputs()["logging"]
    # The handshakes and the echoing frame were logged, redacted: the check is not vacuous.
    assert len(re.findall(r"websockets\.client > xi-api-key: \[redacted\]", logged)) >= 3, logged[:2000]
    assert re.search(r"websockets\.client < TEXT .*Invalid API key \[redacted\]", logged), logged[:4000]


def test_the_vendor_variable_is_read_from_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    monkeypatch.delenv("VOCALIS_TTS_ELEVENLABS_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # the default ``.env``, in the working directory
    _dotenv(tmp_path, "ELEVENLABS_API_KEY=xi-from-dotenv-1234567890")
    tts = ElevenLabsTTS()
    assert tts.api_key() == "xi-from-dotenv-1234567890" and "xi-from-dotenv" not in repr(tts)


def test_the_own_variable_wins_over_the_vendors_in_one_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    monkeypatch.delenv("VOCALIS_TTS_ELEVENLABS_API_KEY", raising=False)
    env = _dotenv(
        tmp_path, "ELEVENLABS_API_KEY=xi-vendor-1234567890", "VOCALIS_TTS_ELEVENLABS_API_KEY=xi-own-1234567890"
    )
    assert _key(ElevenLabsTTS(_env_file=env)) == "xi-own-1234567890"
    monkeypatch.setenv("ELEVENLABS_API_KEY", "xi-vendor-env-1234567890")
    monkeypatch.setenv("VOCALIS_TTS_ELEVENLABS_API_KEY", "xi-own-env-1234567890")
    assert _key(ElevenLabsTTS(_env_file=None)) == "xi-own-env-1234567890"


def test_the_environment_beats_dotenv_and_code_beats_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOCALIS_TTS_ELEVENLABS_API_KEY", raising=False)
    env = _dotenv(tmp_path, "ELEVENLABS_API_KEY=xi-dotenv-1234567890")
    monkeypatch.setenv("ELEVENLABS_API_KEY", "xi-environ-1234567890")
    assert _key(ElevenLabsTTS(_env_file=env)) == "xi-environ-1234567890"
    tts = ElevenLabsTTS(_env_file=env, api_key="xi-code-1234567890")
    assert _key(tts) == "xi-code-1234567890"
    # Rebuilt from ready settings plus overrides, as the core does: the key is kept.
    again = ElevenLabsTTS(settings=tts.settings, model="eleven_turbo_v2_5")
    assert (_key(again), again.settings.model) == ("xi-code-1234567890", "eleven_turbo_v2_5")
    # None (``os.getenv`` of an unset variable) is no key given: the environment's is used.
    assert _key(ElevenLabsTTS(_env_file=env, api_key=None)) == "xi-environ-1234567890"


def test_the_missing_key_message_is_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    monkeypatch.delenv("VOCALIS_TTS_ELEVENLABS_API_KEY", raising=False)
    with pytest.raises(ProviderError) as caught:
        ElevenLabsTTS(_env_file=None).api_key()
    assert (caught.value.kind, caught.value.recoverable) == (ErrorKind.AUTH, False)
    assert str(caught.value) == (
        "tts:elevenlabs: no API key: set VOCALIS_TTS_ELEVENLABS_API_KEY (or ELEVENLABS_API_KEY), "
        "or pass the api_key argument"
    )


async def test_prewarm_names_the_host_and_reason_as_a_stream_does(make_tts: Make) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    tts = make_tts(base_url=f"http://127.0.0.1:{port}", transport="http", timeout=5)
    with pytest.raises(ProviderError) as prewarmed:
        await tts.prewarm()
    with pytest.raises(ProviderError) as spoken:
        async for _ in tts.synthesize("Hello there."):
            pass
    await tts.aclose()
    for error in (prewarmed.value, spoken.value):
        assert (error.kind, error.recoverable) == (ErrorKind.CONNECTION, True)
        assert str(error).startswith("tts:elevenlabs: connection failed (") and f"'127.0.0.1', {port}" in str(error)
    assert str(prewarmed.value) == str(spoken.value)  # one mapping: the same words for the same failure
