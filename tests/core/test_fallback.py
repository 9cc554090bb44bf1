"""Fallback providers: switch before output starts, never after; probe and recover."""

from __future__ import annotations

import asyncio

import pytest
from session_helpers import pipeline

from vocalis import Agent
from vocalis.providers.base import ProviderError
from vocalis.providers.fallback import ConnectOptions, FallbackLLM, FallbackSTT, FallbackTTS
from vocalis.testing import Conversation, FakeLLM, FakeResponse, FakeSTT, FakeTTS, run_virtual, tone


def boom(ctx, tools):
    raise ConnectionError("primary is down")


def test_primary_failing_before_the_first_token_hands_over() -> None:
    async def main() -> None:
        primary, secondary = FakeLLM([boom]), FakeLLM(["From the backup."])
        llm = FallbackLLM([primary, secondary])
        changes: list[dict] = []
        llm.events.on("availability_changed", changes.append)
        async with Conversation(Agent("x"), pipeline(llm=llm)) as conv:
            await conv.session.reply("hi")
            await conv.session.reply("again")
        assert conv.agent_turns() == ["From the backup.", "From the backup."]
        assert len(primary.requests) == 1  # marked down: not asked the second time
        assert changes == [{"provider": "llm:fake", "available": False, "error": "primary is down"}]
        assert conv.errors() == []

    run_virtual(main())


def test_failure_after_output_started_is_not_retried() -> None:
    async def main() -> None:
        primary = FakeLLM([FakeResponse("Part one of the answer.", error=ConnectionResetError("reset"))])
        secondary = FakeLLM(["Something else entirely."])
        async with Conversation(Agent("x"), pipeline(llm=FallbackLLM([primary, secondary]))) as conv:
            await conv.session.reply("hi")
        assert conv.agent_turns() == ["Part one of the answer."]
        assert secondary.requests == []  # no duplicate speech
        assert "reset" in conv.errors()[0]["message"]

    run_virtual(main())


def test_slow_primary_times_out_and_comes_back_after_a_probe() -> None:
    async def main() -> None:
        primary = FakeLLM([FakeResponse("Slow.", ttft=5.0)])
        secondary = FakeLLM(["Fast."])
        llm = FallbackLLM([primary, secondary], connect=ConnectOptions(timeout=1.0, probe_interval=10.0))
        changes: list[bool] = []
        llm.events.on("availability_changed", lambda e: changes.append(e["available"]))
        async with Conversation(Agent("x"), pipeline(llm=llm)) as conv:
            await conv.session.reply("one")
            assert not llm.fallback.available(primary)
            await asyncio.sleep(11)
            assert llm.fallback.available(primary)
            primary.responses = [FakeResponse("Back.", ttft=0.1)]
            await conv.session.reply("two")
        assert conv.agent_turns() == ["Fast.", "Back."]
        assert changes == [False, True]

    run_virtual(main())


def test_retries_stay_on_the_primary() -> None:
    calls = []

    def flaky(ctx, tools):
        calls.append(1)
        if len(calls) == 1:
            raise TimeoutError("blip")
        return "Primary answer."

    async def main() -> None:
        llm = FallbackLLM(
            [FakeLLM([flaky]), FakeLLM(["Backup."])], connect=ConnectOptions(max_retry=1, retry_interval=0.5)
        )
        async with Conversation(Agent("x"), pipeline(llm=llm)) as conv:
            await conv.session.reply("hi")
        assert conv.agent_turns() == ["Primary answer."]

    run_virtual(main())


def test_every_provider_failing_is_one_clear_error() -> None:
    async def main() -> None:
        llm = FallbackLLM([FakeLLM([boom]), FakeLLM([boom])])
        async with Conversation(Agent("x"), pipeline(llm=llm)) as conv:
            await conv.session.reply("hi")
        (error,) = conv.errors()
        assert error["source"] == "llm:fallback" and error["message"].startswith("every LLM failed")

    run_virtual(main())


def test_tts_and_stt_fallbacks() -> None:
    async def main() -> None:
        tts = FallbackTTS([FakeTTS(fail_on="Hello"), FakeTTS()])
        frames = [f async for f in tts.synthesize("Hello there.")]
        assert frames and tts.fallback.available(tts.fallback.providers[1])
        assert not tts.fallback.available(tts.fallback.providers[0])

        class DownSTT(FakeSTT):
            async def recognize(self, frames, *, language=None):
                raise ConnectionError("stt down")

        stt = FallbackSTT([DownSTT(), FakeSTT(["hello"], final_delay=0.0, streaming=False)])
        event = await stt.recognize([tone(0.5)])
        assert event.text == "hello"
        with pytest.raises(ValueError):
            FallbackSTT([])
        with pytest.raises(ProviderError, match="every STT failed"):
            await FallbackSTT([DownSTT()]).recognize([tone(0.5)])
        await tts.aclose()
        await stt.aclose()

    run_virtual(main())
