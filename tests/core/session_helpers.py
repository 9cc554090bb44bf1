"""Small builders shared by the session tests."""

from __future__ import annotations

from typing import Any

from vocalis import Agent, CascadingPipeline
from vocalis.testing import Conversation, FakeEOU, FakeLLM, FakeSTT, FakeTTS, FakeVAD


def pipeline(
    transcripts: list[str] | None = None,
    responses: list[Any] | None = None,
    *,
    stt: FakeSTT | None = None,
    llm: FakeLLM | None = None,
    tts: FakeTTS | None = None,
    eou: FakeEOU | None = None,
    **kwargs: Any,
) -> CascadingPipeline:
    """A cascading pipeline of fakes."""
    return CascadingPipeline(
        stt=stt or FakeSTT(transcripts or []),
        llm=llm or FakeLLM(responses or ["OK."]),
        tts=tts or FakeTTS(),
        vad=FakeVAD(),
        turn_detector=eou,
        **kwargs,
    )


def conversation(
    agent: Agent | None = None, transcripts: list[str] | None = None, responses: list[Any] | None = None, **kwargs: Any
) -> Conversation:
    """A conversation with an instructions-only agent unless one is given."""
    session_kwargs = {
        k: kwargs.pop(k)
        for k in list(kwargs)
        if k in {"wake_up", "tool_timeout", "max_tool_steps", "conversation_flow"}
    }
    flow = session_kwargs.pop("conversation_flow", None)
    return Conversation(
        agent or Agent("You are helpful."), pipeline(transcripts, responses, **kwargs), flow, **session_kwargs
    )
