"""FallbackLLM over two real network providers: hand over before the first
token, never after part of the reply was spoken."""

from __future__ import annotations

from typing import Any

import pytest
from chat_server import ChatServer, Reply

from vocalis import Agent, CascadingPipeline
from vocalis.chat import ChatContext, ChatRole
from vocalis.providers.base import ProviderError
from vocalis.providers.fallback import ConnectOptions, FallbackLLM
from vocalis.testing import Conversation, FakeSTT, FakeTTS, FakeVAD
from vocalis_openai import OpenAILLM


@pytest.fixture
async def servers() -> Any:
    async with ChatServer("a") as primary, ChatServer("b") as secondary:
        yield primary, secondary


def _fallback(primary: ChatServer, secondary: ChatServer, **connect: Any) -> FallbackLLM:
    return FallbackLLM(
        [
            OpenAILLM(base_url=primary.base_url, api_key="a", max_retries=0, _env_file=None),
            OpenAILLM(base_url=secondary.base_url, api_key="b", max_retries=0, _env_file=None),
        ],
        connect=ConnectOptions(probe_interval=60.0, **connect),
    )


def _ctx() -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(ChatRole.USER, "Hello?")
    return ctx


async def _text(llm: FallbackLLM) -> str:
    return "".join([chunk.text async for chunk in llm.chat(_ctx())])


async def test_a_failing_primary_hands_over_before_the_first_token(servers: Any) -> None:
    primary, secondary = servers
    primary.script.append(Reply(status=503))
    secondary.default = Reply(text="From the backup.")
    llm = _fallback(primary, secondary)
    changes: list[dict[str, Any]] = []
    llm.events.on("availability_changed", changes.append)
    assert await _text(llm) == "From the backup."
    assert await _text(llm) == "From the backup."
    await llm.aclose()
    assert len(primary.requests) == 1  # marked down, not asked again
    assert [(c["provider"], c["available"]) for c in changes] == [("llm:openai", False)]


async def test_a_silent_primary_times_out_and_hands_over(servers: Any) -> None:
    primary, secondary = servers
    primary.script.append(Reply(hang=True))
    secondary.default = Reply(text="Quick answer.")
    llm = _fallback(primary, secondary, timeout=0.5)
    assert await _text(llm) == "Quick answer."
    await llm.aclose()


async def test_a_primary_failing_mid_reply_is_not_repeated_by_the_secondary(servers: Any) -> None:
    primary, secondary = servers
    primary.script.append(Reply(text="Part one of the answer, then the line drops.", drop_after=6))
    llm = _fallback(primary, secondary)
    pipeline = CascadingPipeline(stt=FakeSTT([]), llm=llm, tts=FakeTTS(), vad=FakeVAD(), turn_detector=None)
    async with Conversation(Agent("Be brief."), pipeline) as conv:
        handle = await conv.session.reply("Say something long.")
        await handle
    assert secondary.requests == []  # no second, duplicate answer
    (spoken,) = conv.agent_turns()
    assert spoken and "Part one of the answer, then the line drops.".startswith(spoken.strip())
    (error,) = conv.errors()
    assert error["source"] == "llm:openai" and "connection lost mid-stream" in error["message"]


async def test_every_provider_down_is_one_clear_error(servers: Any) -> None:
    primary, secondary = servers
    primary.script.append(Reply(status=500))
    secondary.script.append(Reply(status=502))
    llm = _fallback(primary, secondary)
    with pytest.raises(ProviderError) as info:
        await _text(llm)
    await llm.aclose()
    assert "HTTP 500" in str(info.value) and "HTTP 502" in str(info.value)
