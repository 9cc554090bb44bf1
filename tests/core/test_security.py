"""Secrets stay in: no log line, event, metrics line, span, repr or CLI output shows one.

The plugin-level version (OpenAI and Anthropic keys against local servers,
the WebRTC ICE credential, an MCP server's Authorization header) is
tests/plugins/openai/test_openai_secrets.py; the HTTP endpoints' token checks
are in test_serve.py.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from pydantic import Field, SecretStr

from vocalis import Agent, CascadingPipeline, function_tool
from vocalis.cli.main import cli
from vocalis.serve.server import ServeOptions, SessionServer
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis.testing import (
    Conversation,
    FakeLLM,
    FakeResponse,
    FakeSTT,
    FakeTTS,
    FakeVAD,
    OutputCapture,
    run_virtual,
)

API_KEY = "sk-core-5b1e0f3a9c77d2"
HEADER = "Bearer hdr-7d42aa19e0c3"
TOKEN = "tts-token-91c3e2f04b"
PASSWORD = "pw-3f9a0c2d71"
SERVE_TOKEN = "serve-token-c8d1e5a2f6"
SECRETS = [API_KEY, HEADER, TOKEN, PASSWORD, SERVE_TOKEN]


class KeyedLLM(FakeLLM):
    """A fake LLM configured like a hosted one: key, headers, a URL with a password."""

    name: ClassVar[str] = "keyed"

    class Settings(ProviderSettings):
        model_config = provider_settings_config("llm", "keyed")
        responses: list[str] = []
        api_key: SecretStr | None = None
        # Typed like the plugins' header dicts but without repr=False: the core masks it anyway.
        headers: dict[str, str] = Field(default_factory=dict)
        base_url: str = ""
        model: str = "keyed-1"


class KeyedTTS(FakeTTS):
    """A fake TTS whose token is a plain ``str`` (a plugin author's slip)."""

    name: ClassVar[str] = "keyed"

    class Settings(ProviderSettings):
        model_config = provider_settings_config("tts", "keyed")
        access_token: str = ""


def keyed_llm(script: list[Any]) -> KeyedLLM:
    return KeyedLLM(
        script,
        api_key=API_KEY,
        headers={"Authorization": HEADER},
        base_url=f"https://agent:{PASSWORD}@llm.example/v1",
    )


@function_tool
async def lookup(city: str) -> str:
    """Look up the weather in a city."""
    return f"sunny in {city}"


def run_session(capture: OutputCapture) -> None:
    llm = keyed_llm(
        [
            FakeResponse(tool_calls=[("lookup", '{"city": "Paris"}')]),
            "It is sunny in Paris.",
            # A provider error that quotes its settings: the repr masks the secrets.
            FakeResponse(
                text="Sorry",
                error=RuntimeError(
                    f"server refused the request ({KeyedLLM.Settings(api_key=API_KEY, headers={'Authorization': HEADER})!r})"  # noqa: E501
                ),
            ),
            "Still here.",
        ]
    )
    tts = KeyedTTS(access_token=TOKEN)
    pipeline = CascadingPipeline(
        stt=FakeSTT(["weather in Paris", "again"]), llm=llm, tts=tts, vad=FakeVAD(), turn_detector=None
    )
    agent = Agent("Be brief.", tools=[lookup])
    server = SessionServer(lambda: agent, lambda: pipeline, ServeOptions(token=SERVE_TOKEN))

    async def main() -> None:
        conversation = Conversation(agent, pipeline, record_text=True)
        capture.watch(conversation.session)
        async with conversation as conv:
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
            await conv.session.send_text("and now?")
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
        capture.add_repr(
            conv.session,
            agent,
            pipeline,
            llm,
            llm.settings,
            tts,
            tts.settings,
            server,
            server.options,
            agent.chat_context,
            *conv.session.metrics,
        )
        assert conv.errors(), "the scripted provider error must have happened"

    run_virtual(main())


def test_a_sessions_outputs_show_none_of_its_secrets() -> None:
    with OutputCapture() as capture:
        run_session(capture)
    outputs = capture.outputs()
    # Every channel really captured the session (so the check below can fail).
    session_id = json.loads(outputs["metrics"].splitlines()[0])["session_id"]
    for channel in ("loguru", "events", "metrics", "spans"):
        assert session_id in outputs[channel], channel
    assert "sunny in Paris" in outputs["events"] and "vocalis.tool" in outputs["spans"]
    assert "server refused the request" in outputs["loguru"] and "server refused the request" in outputs["events"]
    capture.assert_absent(SECRETS)


def test_the_capture_finds_a_leak_wherever_it_is() -> None:
    with OutputCapture() as capture:
        from loguru import logger

        logger.trace("connecting with {}", API_KEY)
        capture.add("cli", f"token={TOKEN}")
    assert set(capture.where(API_KEY)) == {"loguru"} and capture.where(TOKEN) == ["cli"]
    with pytest.raises(AssertionError) as info:
        capture.assert_absent([API_KEY, TOKEN])
    message = str(info.value)
    assert "secret 0 appears in loguru" in message and "secret 1 appears in cli" in message
    assert API_KEY not in message and TOKEN not in message  # the report masks them too


def test_settings_reprs_mask_credential_fields_and_url_passwords() -> None:
    settings = KeyedLLM.Settings(
        api_key=API_KEY,
        headers={"Authorization": HEADER, "X-Route": "eu"},
        base_url=f"https://agent:{PASSWORD}@llm.example/v1",
    )
    text = repr(settings) + str(settings) + repr(KeyedLLM(settings=settings))
    assert not any(secret in text for secret in SECRETS), text
    assert "'Authorization': '**********'" in text and "https://***@llm.example/v1" in text
    assert "model='keyed-1'" in text  # what is not a credential stays readable
    # The values themselves are intact for the provider to use.
    assert settings.headers["Authorization"] == HEADER and settings.api_key.get_secret_value() == API_KEY
    assert TOKEN not in repr(KeyedTTS.Settings(access_token=TOKEN))

    class Limits(ProviderSettings):
        max_tokens: int = 5
        token_budget: str = "many"
        keyframe: str = "k"

    assert repr(Limits()) == "Limits(max_tokens=5, token_budget='many', keyframe='k')"


KEYED_PLUGIN = """
from typing import ClassVar
from pydantic import SecretStr
from vocalis import hookimpl
from vocalis.providers.llm import LLM
from vocalis.settings import ProviderSettings, provider_settings_config


class KeyedLLM(LLM):
    name: ClassVar[str] = "keyed"

    class Settings(ProviderSettings):
        model_config = provider_settings_config("llm", "keyed")
        api_key: SecretStr | None = None
        headers: dict[str, str] = {}


@hookimpl
def vocalis_register_llm(register):
    register(KeyedLLM, default=True)
"""


def test_vocalis_plugins_shows_no_configured_secret(dists: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    dists.install("vocalis-keyed", KEYED_PLUGIN)
    monkeypatch.setenv("VOCALIS_PLUGINS", "keyed")
    monkeypatch.setenv("VOCALIS_LLM_KEYED_API_KEY", API_KEY)
    monkeypatch.setenv("VOCALIS_LLM_KEYED_HEADERS", json.dumps({"Authorization": HEADER}))
    monkeypatch.setenv("VOCALIS_LLM", "keyed")
    with OutputCapture() as capture:
        for args in (["plugins", "--json"], ["plugins"], ["-v", "-v", "plugins"]):
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 0, result.output
            capture.add(" ".join(args), result.output)
    assert any(row["name"] == "keyed" for row in json.loads(capture.outputs()["plugins --json"]))
    capture.assert_absent([API_KEY, HEADER])
