"""Fallbacks in a session with the defaults: a hung member never costs the reply,
its prewarm never holds the session's start, and nothing outlives the session.

Everything runs in virtual time.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from loguru import logger

from vocalis import Agent, CascadingPipeline
from vocalis.providers.fallback import ConnectOptions, FallbackSTT, FallbackTTS
from vocalis.testing import Conversation, FakeLLM, FakeSTT, FakeTTS, FakeVAD, Fault, FaultySTT, FaultyTTS, run_virtual

GREETING = "Hi! Ask me about the weather."


class Member(FakeTTS):
    """A TTS whose prewarm takes ``warm`` seconds (None: for ever) or raises ``warm_error``."""

    def __init__(self, name: str, *, warm: float | None = 0.0, warm_error: Exception | None = None) -> None:
        super().__init__()
        self.name = name  # type: ignore[misc]
        self.warm, self.warm_error = warm, warm_error
        self.prewarms = 0
        self.closed = 0

    async def prewarm(self) -> None:
        self.prewarms += 1
        if self.warm_error is not None:
            raise self.warm_error
        if self.warm is None:
            await asyncio.get_running_loop().create_future()
        await asyncio.sleep(self.warm)

    async def aclose(self) -> None:
        self.closed += 1


class Greeter(Agent):
    def __init__(self) -> None:
        super().__init__("Be brief.")

    async def on_enter(self) -> None:
        await self.session.say(GREETING)


def session_on(tts: Any, *, stt: Any = None, greet: bool = True, **kwargs: Any) -> Conversation:
    pipeline = CascadingPipeline(
        stt=stt or FakeSTT(["what is the weather"]),
        llm=FakeLLM(["It is sunny.", "Still sunny."]),
        tts=tts,
        vad=FakeVAD(),
        turn_detector=None,
        **kwargs,
    )
    return Conversation(Greeter() if greet else Agent("Be brief."), pipeline)


def hung(name: str) -> FaultyTTS:
    """A hosted TTS that accepts the request and never answers."""
    return FaultyTTS(FakeTTS(), Fault.HANG, times=None, name=name)


# -- 2. the defaults leave the backup time to speak ------------------------------------------------------
def test_a_hung_primary_leaves_the_backup_speaking_with_the_default_timeouts() -> None:
    async def main() -> None:
        backup = FakeTTS()
        tts = FallbackTTS([hung("hosted"), backup])  # no ConnectOptions, as in the README
        async with session_on(tts) as conv:  # default ProviderTimeouts
            await conv.wait_for_agent_turn(1)
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn(2)
        assert conv.agent_turns() == [GREETING, "It is sunny."]
        assert backup.spoken == [GREETING, "It is sunny."]
        assert conv.errors() == []
        await tts.aclose()

    run_virtual(main())


def test_two_hung_hosted_members_leave_the_offline_one_speaking() -> None:
    """Each member the fallback tries gets the pipeline's whole first-audio limit."""

    async def main() -> None:
        offline = FakeTTS()
        tts = FallbackTTS([hung("elevenlabs"), hung("cartesia"), offline])
        async with session_on(tts) as conv:
            await conv.wait_for_agent_turn(1)
        assert conv.agent_turns() == [GREETING] and offline.spoken == [GREETING]
        assert conv.errors() == []
        await tts.aclose()

    run_virtual(main())


def test_a_hung_primary_stt_leaves_the_backup_listening_with_the_default_timeouts() -> None:
    async def main() -> None:
        primary = FaultySTT(FakeSTT(["lost"]), Fault.HANG, times=None, name="hosted")
        stt = FallbackSTT([primary, FakeSTT(["what is the weather"])])
        async with session_on(FakeTTS(), stt=stt, greet=False) as conv:
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn(1)
        assert conv.user_turns() == ["what is the weather"]
        assert conv.agent_turns() == ["It is sunny."]
        assert conv.errors() == []
        await stt.aclose()

    run_virtual(main())


# -- 3. prewarm: bounded per member, failures remembered -----------------------------------------------------
def test_a_hung_prewarm_neither_holds_the_start_nor_loses_the_greeting() -> None:
    async def main() -> None:
        primary, backup = Member("hosted", warm=None), Member("offline")
        tts = FallbackTTS([primary, backup])
        changes: list[dict[str, Any]] = []
        tts.events.on("availability_changed", changes.append)
        loop = asyncio.get_running_loop()
        conv = session_on(tts)
        started = loop.time()
        await conv.start()
        assert loop.time() - started == pytest.approx(ConnectOptions().timeout)
        await conv.wait_for_agent_turn(1)
        assert conv.agent_turns() == [GREETING]
        assert primary.spoken == [] and backup.spoken == [GREETING]  # the dead one was not tried
        assert changes == [{"provider": "tts:hosted", "available": False, "error": "not ready within 5 s (prewarm)"}]
        await conv.close()
        await tts.aclose()

    run_virtual(main())


def test_a_failed_prewarm_marks_the_member_down_so_turn_1_skips_it() -> None:
    async def main() -> None:
        primary = Member("hosted", warm_error=ConnectionRefusedError("401 invalid key"))
        backup = Member("offline")
        tts = FallbackTTS([primary, backup])
        loop = asyncio.get_running_loop()
        conv = session_on(tts)
        started = loop.time()
        await conv.start()
        assert loop.time() - started < 0.1  # nothing waited on the failed one
        await conv.wait_for_agent_turn(1)
        assert not tts.fallback.available(primary)
        assert primary.spoken == [] and backup.spoken == [GREETING]
        assert conv.errors() == []  # the fallback covered it
        await conv.close()
        await tts.aclose()

    run_virtual(main())


def test_a_slowly_loading_member_is_waited_for_when_none_is_ready_and_comes_back_when_loaded() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        # Alone, a local model's load is never cut short.
        alone = FallbackTTS([Member("local", warm=40.0)])
        started = loop.time()
        await alone.prewarm()
        assert loop.time() - started == pytest.approx(40.0)
        assert alone.fallback.available(alone.fallback.providers[0])
        await alone.aclose()

        # Behind a ready one, it is skipped after the timeout, and back once loaded.
        slow, ready = Member("local", warm=8.0), Member("hosted")
        tts = FallbackTTS([slow, ready])
        changes: list[bool] = []
        tts.events.on("availability_changed", lambda e: changes.append(e["available"]))
        started = loop.time()
        await tts.prewarm()
        assert loop.time() - started == pytest.approx(5.0)
        assert not tts.fallback.available(slow)
        await asyncio.sleep(3.5)
        assert tts.fallback.available(slow) and changes == [False, True]
        assert slow.prewarms == 1  # the first prewarm finished it: no probe was needed
        await tts.aclose()

    run_virtual(main())


def test_every_member_failing_its_prewarm_is_reported_at_start() -> None:
    async def main() -> None:
        tts = FallbackTTS([Member("a", warm_error=OSError("down")), Member("b", warm_error=OSError("down too"))])
        async with session_on(tts, greet=False) as conv:
            pass
        (error,) = conv.errors()
        assert error["source"] == "tts:fallback"
        assert error["message"] == "every TTS failed: tts:a: down; tts:b: down too"
        await tts.aclose()

    run_virtual(main())


def test_the_pipeline_names_a_provider_that_is_slow_to_get_ready() -> None:
    async def main() -> None:
        lines: list[str] = []
        handler = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
        try:
            loop = asyncio.get_running_loop()
            conv = session_on(Member("hosted", warm=12.0), greet=False)
            started = loop.time()
            await conv.start()
            assert loop.time() - started == pytest.approx(12.0)  # not cut short
            await conv.close()
        finally:
            logger.remove(handler)
        assert lines == ["still waiting for tts:hosted to get ready (6 s so far)"]

    run_virtual(main())


# -- 4. nothing outlives the session, or the fallback --------------------------------------------------------
def test_closing_a_fallback_closes_its_members_and_stops_its_probes() -> None:
    async def main() -> None:
        before = asyncio.all_tasks()
        members = [Member("hosted", warm_error=OSError("down")), Member("offline")]
        tts = FallbackTTS(members)
        await tts.prewarm()
        assert not tts.fallback.available(members[0])  # a probe runs
        stt_members = [FakeSTT(), FakeSTT()]
        stt = FallbackSTT(stt_members)
        await tts.aclose()
        await tts.aclose()  # idempotent
        await stt.aclose()
        assert [m.closed for m in members] == [2, 2]
        assert asyncio.all_tasks() <= before

    run_virtual(main())


def test_a_session_close_stops_the_probes_and_closes_the_fallback_it_ran_on() -> None:
    async def main() -> None:
        before = asyncio.all_tasks()
        primary, backup = Member("hosted", warm_error=OSError("down")), Member("offline")
        tts = FallbackTTS([primary, backup])
        async with session_on(tts) as conv:
            await conv.wait_for_agent_turn(1)
            assert not tts.fallback.available(primary)  # its probe runs
        await asyncio.sleep(0)
        assert asyncio.all_tasks() <= before  # the probe stopped with the session
        assert primary.closed == backup.closed == 1  # no socket left open either

        # Used again by a later session, it checks the member again: back once its prewarm works.
        primary.warm_error = None
        async with session_on(tts) as again:
            await again.wait_for_agent_turn(1)
        assert tts.fallback.available(primary) and primary.spoken == [GREETING]
        assert primary.closed == backup.closed == 2

    run_virtual(main())


def test_a_provider_shared_by_two_sessions_is_closed_when_the_last_one_ends() -> None:
    async def main() -> None:
        before = asyncio.all_tasks()
        primary = Member("hosted", warm_error=OSError("down"))
        tts = FallbackTTS([primary, Member("offline")], connect=ConnectOptions(probe_interval=10.0))
        first, second = session_on(tts), session_on(tts)
        await first.start()
        await second.start()
        await first.close()
        assert primary.closed == 0  # the second session still runs on it
        primary.warm_error = None
        await asyncio.sleep(10.5)
        assert tts.fallback.available(primary)  # the probe went on for the second session
        await second.close()
        assert primary.closed == 1
        assert asyncio.all_tasks() <= before

    run_virtual(main())


def test_a_realtime_model_given_to_the_pipeline_is_closed_with_the_session() -> None:
    from vocalis import RealTimePipeline
    from vocalis.testing import FakeRealtimeModel

    class Model(FakeRealtimeModel):
        closed = 0

        async def aclose(self) -> None:
            self.closed += 1
            await super().aclose()

    async def main() -> None:
        model = Model()
        async with Conversation(Agent("x"), RealTimePipeline(model)):
            pass
        assert model.closed == 1

    run_virtual(main())
