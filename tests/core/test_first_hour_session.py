"""The rest of VideoSDK's session API, and Vocalis quiet as a library.

Agent.on_speech_in / on_speech_out hooks, the STARTING state event, a session
closed by the job it was made in, start(**options) passed to the pipeline,
and no log output until the application enables it.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from loguru import logger
from session_helpers import conversation, pipeline

from vocalis import Agent, AgentSession, AgentState
from vocalis.event_types import SpeechInEvent, SpeechOutEvent
from vocalis.log import configure_logging, disable_logging, enable_logging
from vocalis.pipeline.ports import SessionPort
from vocalis.session.job import current_job_context, run_job
from vocalis.testing import run_virtual


class HookedAgent(Agent):
    def __init__(self) -> None:
        super().__init__("You are helpful.")
        self.heard: list[tuple[str, bool]] = []
        self.said: list[str] = []

    async def on_speech_in(self, data: SpeechInEvent) -> None:  # async hook
        self.heard.append((data["text"], data["is_final"]))

    def on_speech_out(self, data: SpeechOutEvent) -> None:  # sync hook
        self.said.append(data["text"])


def test_agent_speech_hooks_are_called_for_the_session_events() -> None:
    agent = HookedAgent()

    async def main() -> None:
        async with conversation(agent, transcripts=["hi"], responses=["Hello there."]) as conv:
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
            await conv.session.send_text("and you")
            await conv.wait_for(lambda: len(agent.said) >= 2)

    run_virtual(main())
    assert ("hi", True) in agent.heard and ("and you", True) in agent.heard
    assert agent.said[0] == "Hello there."


class FailingHooks(Agent):
    def __init__(self) -> None:
        super().__init__("You are helpful.")

    async def on_speech_in(self, data: SpeechInEvent) -> None:
        raise RuntimeError("in-hook broke")

    def on_speech_out(self, data: SpeechOutEvent) -> None:
        raise ValueError("out-hook broke")


def test_failing_speech_hooks_are_reported_not_raised() -> None:
    async def main() -> list[Any]:
        async with conversation(FailingHooks(), transcripts=["hi"], responses=["Hello there."]) as conv:
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
            await conv.wait_for(
                lambda: {e["source"] for e in conv.named("error")} >= {"agent.on_speech_in", "agent.on_speech_out"}
            )
            assert conv.agent_turns() == ["Hello there."]  # the conversation went on
        return conv.named("error")

    errors = run_virtual(main())
    by_source = {e["source"]: e["message"] for e in errors}
    assert "in-hook broke" in by_source["agent.on_speech_in"]
    assert "out-hook broke" in by_source["agent.on_speech_out"]


def test_the_new_agent_s_hook_runs_after_a_handoff() -> None:
    second = HookedAgent()
    first = Agent("first")

    async def main() -> None:
        async with conversation(first, responses=["One.", "Two."]) as conv:
            conv.session.request_handoff(second)
            await conv.session.send_text("one")  # the handoff happens once this reply ends
            await conv.wait_for(lambda: conv.session.agent is second)
            await conv.session.send_text("two")
            await conv.wait_for(lambda: second.heard != [])

    run_virtual(main())
    assert second.heard == [("two", True)]


def test_start_emits_starting_first() -> None:
    async def main() -> list[Any]:
        conv = conversation()
        await conv.start()
        await conv.silence(0.5)
        await conv.close()
        return conv.named("agent_state_changed")

    changes = run_virtual(main())
    assert changes[0] == {"state": AgentState.STARTING, "old_state": AgentState.STARTING}
    assert [c["state"] for c in changes[1:2]] == [AgentState.IDLE]
    assert all(c["state"] != c["old_state"] for c in changes[1:])


def test_a_session_made_in_a_job_is_closed_by_its_shutdown() -> None:
    seen: dict[str, Any] = {}

    async def entrypoint(ctx: Any) -> None:
        seen["current"] = current_job_context()
        session = AgentSession(Agent("You are helpful."), pipeline())
        seen["session"] = session
        await session.start()  # started directly, not through ctx.start_session
        ctx.shutdown("test over")

    async def main() -> None:
        assert current_job_context() is None
        ctx = await run_job(entrypoint, handle_signals=False)
        seen["ctx"] = ctx
        assert current_job_context() is None  # only inside the job

    run_virtual(main())
    assert seen["current"] is seen["ctx"]
    session = seen["session"]
    assert session.closed and session.close_reason == "test over"


def test_a_closed_session_leaves_the_job_s_callbacks() -> None:
    left: list[list[Any]] = []

    async def entrypoint(ctx: Any) -> None:
        for _ in range(3):
            session = AgentSession(Agent("You are helpful."), pipeline())
            await session.start()
            left.append(list(ctx._callbacks))
            await session.close()
        left.append(list(ctx._callbacks))

    run_virtual(run_job(entrypoint, handle_signals=False))
    assert [len(callbacks) for callbacks in left] == [1, 1, 1, 0]


def test_a_session_outside_a_job_registers_nothing() -> None:
    async def main() -> None:
        session = AgentSession(Agent("You are helpful."), pipeline())
        await session.start()
        await session.close()
        assert session.close_reason == "closed"

    run_virtual(main())


def fake_pipeline_class() -> type:
    base = type(pipeline())

    class OptionsPipeline(base):  # type: ignore[misc, valid-type]
        options: dict[str, object] = {}

        async def attach(self, session: SessionPort, *, greeting_voice: str = "default") -> None:
            self.options = {"greeting_voice": greeting_voice}
            await super().attach(session)

    return OptionsPipeline


def test_start_passes_its_keyword_arguments_to_the_pipeline() -> None:
    from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD

    cls = fake_pipeline_class()
    pipe = cls(stt=FakeSTT([]), llm=FakeLLM(["OK."]), tts=FakeTTS(), vad=FakeVAD(), turn_detector=None)

    async def main() -> None:
        session = AgentSession(Agent("You are helpful."), pipe)
        await session.start(greeting_voice="warm")
        assert pipe.options == {"greeting_voice": "warm"}
        await session.close()

        plain = AgentSession(Agent("You are helpful."), pipeline())
        with pytest.raises(TypeError, match=r"CascadingPipeline.attach\(\), which does not take them"):
            await plain.start(voice="warm")
        assert not plain._started and plain.agent_state is AgentState.STARTING  # nothing began

    run_virtual(main())


QUIET_SCRIPT = textwrap.dedent(
    """
    from vocalis import Agent
    from vocalis.testing import Conversation, FakeLLM, FakeSTT, FakeTTS, FakeVAD, run_virtual
    from vocalis import CascadingPipeline

    async def main():
        pipe = CascadingPipeline(stt=FakeSTT(["hi"]), llm=FakeLLM(["Hello."]), tts=FakeTTS(), vad=FakeVAD())
        async with Conversation(Agent("Be brief."), pipe) as conv:
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
        assert conv.agent_turns() == ["Hello."], conv.agent_turns()
        print("done")

    run_virtual(main())
    """
)


def test_a_library_user_sees_no_log_lines() -> None:
    result = subprocess.run([sys.executable, "-c", QUIET_SCRIPT], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert result.stderr == ""
    # The same script with logging enabled by the application does log:
    loud = subprocess.run(
        [sys.executable, "-c", "from vocalis.log import enable_logging; enable_logging()\n" + QUIET_SCRIPT],
        capture_output=True,
        text=True,
        check=False,
    )
    assert loud.returncode == 0, loud.stderr
    assert "session started" in loud.stderr


def test_the_cli_enables_vocalis_and_its_plugins() -> None:
    from vocalis.log import plugin_packages

    sink = io.StringIO()
    disable_logging()
    try:
        logger.patch(lambda r: r.update(name="vocalis.session.x")).info("silenced")
        handler = configure_logging("INFO", sink=sink)
        try:
            logger.patch(lambda r: r.update(name="vocalis.session.x")).info("now heard")
        finally:
            logger.remove(handler)
            logger.add(sys.stderr)
    finally:
        enable_logging()
    assert "now heard" in sink.getvalue()
    assert "silenced" not in sink.getvalue()
    assert enable_logging()[0] == "vocalis"
    assert set(plugin_packages()) <= {name for name in enable_logging()}
