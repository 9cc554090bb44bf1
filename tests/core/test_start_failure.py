"""A session that cannot start: reported, closed, and nothing waits on it for ever."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from session_helpers import pipeline

from vocalis import Agent, AgentSession, RealTimePipeline
from vocalis.cli.main import cli
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.session.job import run_job
from vocalis.testing import Conversation, FakeRealtimeModel, FakeTransport, run_virtual

NO_KEY = "no API key: set VOCALIS_REALTIME_FAKE_API_KEY"


class KeylessModel(FakeRealtimeModel):
    """A realtime model whose connect is refused for good, as with a missing key."""

    async def connect(self, **kwargs: Any) -> Any:
        raise self.error(NO_KEY, recoverable=False, kind=ErrorKind.AUTH)


def test_a_start_failure_is_reported_closes_the_session_and_is_raised() -> None:
    async def main() -> None:
        before = asyncio.all_tasks()
        agent = Agent("x")
        exited: list[bool] = []
        agent.on_exit = lambda: exited.append(True)  # type: ignore[method-assign,assignment,return-value]
        session = AgentSession(agent, RealTimePipeline(KeylessModel()))
        errors: list[dict[str, Any]] = []
        closes: list[dict[str, Any]] = []
        session.on("error", errors.append)
        session.on("close", closes.append)
        transport = FakeTransport()
        with pytest.raises(ProviderError, match="no API key"):
            await session.start(transport)
        assert errors == [{"source": "realtime:fake", "message": NO_KEY, "recoverable": False, "kind": "auth"}]
        assert session.closed and isinstance(session.start_error, ProviderError)
        assert [c["reason"] for c in closes] == ["start failed"]
        assert exited == []  # no on_exit without an on_enter
        assert transport.closed
        await asyncio.sleep(0)
        assert asyncio.all_tasks() <= before  # nothing left running

    run_virtual(main())


def test_a_job_whose_session_failed_to_start_ends_at_once() -> None:
    """run_job used to wait for that session to close, for ever (a VirtualTimeDeadlock here)."""
    seen: list[str] = []

    async def entrypoint(ctx: Any) -> None:
        session = AgentSession(Agent("x"), RealTimePipeline(KeylessModel()))
        session.on("error", lambda e: seen.append(e["message"]))
        await ctx.start_session(session, FakeTransport())

    async def main() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        ctx = await run_job(entrypoint, handle_signals=False)
        assert all(s.closed for s in ctx.sessions)
        return loop.time() - started

    assert run_virtual(main()) < 1.0
    assert seen == [NO_KEY]


def test_a_pipeline_refused_by_a_second_session_keeps_serving_the_first() -> None:
    async def main() -> None:
        shared = pipeline(responses=["Still here."])
        first = Conversation(Agent("a"), shared)
        await first.start()
        second = Conversation(Agent("b"), shared)
        with pytest.raises(RuntimeError, match="one session"):
            await second.start()
        assert second.session.closed and not first.session.closed
        await first.session.reply("hello")
        assert first.agent_turns() == ["Still here."]
        await first.close()

    run_virtual(main())


AGENT_FILE = """
from typing import Any
from vocalis import Agent, RealTimePipeline
from vocalis.providers.base import ErrorKind
from vocalis.testing import FakeRealtimeModel


class KeylessModel(FakeRealtimeModel):
    async def connect(self, **kwargs: Any) -> Any:
        raise self.error("{message}", recoverable=False, kind=ErrorKind.AUTH)


def make_agent() -> Agent:
    return Agent("You are helpful.")


def make_pipeline() -> RealTimePipeline:
    return RealTimePipeline(KeylessModel())
"""


@pytest.mark.parametrize("fast", [False, True])
def test_talk_reports_a_session_that_never_started_and_exits_1(tmp_path: Path, fast: bool) -> None:
    agent = tmp_path / "keyless_agent.py"
    agent.write_text(textwrap.dedent(AGENT_FILE.format(message=NO_KEY)))
    wav = Path(__file__).parents[2] / "examples" / "sample.wav"
    args = ["talk", str(agent), "--input", str(wav), *(["--fast"] if fast else [])]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert f"error: realtime:fake: {NO_KEY}" in result.output
    assert "no speech heard" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
