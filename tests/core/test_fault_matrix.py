"""The fault matrix: every provider kind × every fault, under virtual time.

Each cell wraps one provider of a working session in a fault wrapper from
``vocalis.testing``, lets the user speak a turn that hits the fault, then
speak another one, and checks that:

- an ``error`` event names the provider (its label) and says what happened;
- the faulted turn ends cleanly: the user hears the answer (the fault did not
  cost it), what was said before a mid-stream failure, or the session's
  apology (the failure came before anything was heard); the agent is never
  left THINKING or SPEAKING;
- the next turn is answered: the session stays alive.

Where a fallback applies (STT, LLM, TTS failing before their first output),
the same faults hit the primary of a ``Fallback*`` provider: the backup
answers, and the fallback's ``availability_changed`` event names the primary
and the fault.

Cells that make no sense for a kind map to the nearest meaningful fault; the
wrappers' docstrings say how (e.g. a tool call has no "mid-stream": it fails
after the work was done).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from vocalis import (
    Agent,
    CascadingPipeline,
    ConnectOptions,
    FallbackLLM,
    FallbackSTT,
    FallbackTTS,
    RealTimePipeline,
    function_tool,
)
from vocalis.chat import ChatContext, ChatRole
from vocalis.states import AgentState
from vocalis.testing import (
    Conversation,
    FakeEOU,
    FakeLLM,
    FakeRealtimeModel,
    FakeResponse,
    FakeSTT,
    FakeToolSource,
    FakeTransport,
    FakeTTS,
    FakeVAD,
    Fault,
    FaultyEOU,
    FaultyLLM,
    FaultyRealtimeModel,
    FaultySTT,
    FaultyToolSource,
    FaultyTransport,
    FaultyTTS,
    FaultyVAD,
    RealtimeTurn,
    run_virtual,
)

APOLOGY = "Sorry, something went wrong on my side."
ANSWER = "answer"  # the faulted turn is still answered
PARTIAL = "partial"  # the user hears the start of the answer, then it stops
SORRY = "apology"  # nothing was heard: the session apologises

F = Fault


def echo(ctx: ChatContext, tools: Any) -> str:
    """The fake LLM answers what it heard, so the tests can tell turns apart."""
    message = ctx.last_message(ChatRole.USER)
    return f"You said {message.content if message else 'nothing'}."


@function_tool
async def get_weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: The city.
    """
    return f"Sunny in {city}."


@dataclass
class Cell:
    """One cell: the fault, how the wrapper is set up, and what must happen."""

    kind: str
    fault: Fault
    source: str
    message: str  # a regular expression the error message must match
    outcome: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.fault.value}"


RAISED = r"^ConnectionRefusedError: injected fault: failed at the start$"
RESET = r"^ConnectionResetError: injected fault: failed mid-(stream|request)"
CLOSED = r"^ConnectionAbortedError: injected fault: the connection closed"
STUCK_STT = r"^timed out after 10\.8 s waiting for the final transcript$"  # 10 s + the 0.8 s of speech

CELLS = [
    # STT, streaming: a stream is a request; interims come every 0.2 s of speech.
    Cell("stt", F.RAISE_AT_START, "stt:fake", RAISED, ANSWER),  # the new stream hears the rest
    Cell("stt", F.RAISE_MID_STREAM, "stt:fake", RESET, ANSWER),
    Cell("stt", F.SLOW, "stt:fake", STUCK_STT, SORRY),
    Cell("stt", F.HANG, "stt:fake", STUCK_STT, SORRY),
    Cell("stt", F.GARBAGE, "stt:fake", r"^returned a str instead of a SpeechEvent$", ANSWER),
    Cell("stt", F.CLOSE, "stt:fake", r"^stream ended early", ANSWER),
    # STT, one-shot recognition of VAD segments: a final recognition is a request.
    Cell("stt-segmented", F.RAISE_AT_START, "stt:fake", RAISED, SORRY),
    Cell("stt-segmented", F.RAISE_MID_STREAM, "stt:fake", RESET, SORRY),  # recognised, then lost
    Cell("stt-segmented", F.SLOW, "stt:fake", STUCK_STT, SORRY),
    Cell("stt-segmented", F.HANG, "stt:fake", STUCK_STT, SORRY),
    Cell("stt-segmented", F.GARBAGE, "stt:fake", r"^returned a str instead of a SpeechEvent$", SORRY),
    Cell("stt-segmented", F.CLOSE, "stt:fake", CLOSED, SORRY),  # a request has no stream to cut short
    # LLM: a reply is a request.
    Cell("llm", F.RAISE_AT_START, "llm:fake", RAISED, SORRY),
    Cell("llm", F.RAISE_MID_STREAM, "llm:fake", RESET, PARTIAL, {"after_chunks": 2}),
    Cell("llm", F.SLOW, "llm:fake", r"^timed out after 15 s waiting for the first chunk$", SORRY),
    Cell("llm", F.HANG, "llm:fake", r"^timed out after 15 s waiting for the next chunk$", PARTIAL, {"after_chunks": 2}),
    Cell("llm", F.GARBAGE, "llm:fake", r"^returned a str instead of a ChatChunk$", SORRY),
    Cell("llm", F.CLOSE, "llm:fake", r"^stream ended early: no output at all$", SORRY),
    # TTS: a synthesis (one sentence) is a request.
    Cell("tts", F.RAISE_AT_START, "tts:fake", RAISED, SORRY),
    Cell("tts", F.RAISE_MID_STREAM, "tts:fake", RESET, PARTIAL, {"after_chunks": 40}),
    Cell("tts", F.SLOW, "tts:fake", r"^timed out after 10 s waiting for audio$", SORRY),
    Cell("tts", F.HANG, "tts:fake", r"^timed out after 10 s waiting for audio$", PARTIAL, {"after_chunks": 40}),
    Cell("tts", F.GARBAGE, "tts:fake", r"^returned a bytes instead of an AudioFrame$", SORRY),
    Cell("tts", F.CLOSE, "tts:fake", r"^stream ended early: no audio for \d+ characters of text$", SORRY),
    # VAD: a stream is a request. It has no request to time out: SLOW and HANG
    # stall it after its start of speech (one that stalls before is silence).
    Cell("vad", F.RAISE_AT_START, "vad:fake", RAISED, ANSWER),
    Cell("vad", F.RAISE_MID_STREAM, "vad:fake", RESET, ANSWER),  # after the start of speech
    Cell("vad", F.SLOW, "vad:fake", r"^timed out after 5 s: stuck in speech", ANSWER, {"after_chunks": 1}),
    Cell("vad", F.HANG, "vad:fake", r"^timed out after 5 s: stuck in speech", ANSWER, {"after_chunks": 1}),
    Cell("vad", F.GARBAGE, "vad:fake", r"^returned a str instead of a VADEvent$", ANSWER),
    Cell("vad", F.CLOSE, "vad:fake", r"^stream ended early", ANSWER),
    # Turn detector: a prediction is a request; the turn is decided without it.
    Cell("eou", F.RAISE_AT_START, "eou:fake", RAISED, ANSWER),
    Cell("eou", F.RAISE_MID_STREAM, "eou:fake", RESET, ANSWER),  # predicted, then lost
    Cell("eou", F.SLOW, "eou:fake", r"^timed out after 3 s predicting the end of turn$", ANSWER),
    Cell("eou", F.HANG, "eou:fake", r"^timed out after 3 s predicting the end of turn$", ANSWER),
    Cell("eou", F.GARBAGE, "eou:fake", r"^returned a str instead of a probability", ANSWER),
    Cell("eou", F.CLOSE, "eou:fake", CLOSED, ANSWER),
    # Tools: a call is a request; the model reads the failure and answers.
    # Errors of a call name the tool (the session's tool runner reports them).
    Cell("tools", F.RAISE_AT_START, "tool:get_weather", RAISED, ANSWER),
    Cell("tools", F.RAISE_MID_STREAM, "tool:get_weather", RESET, ANSWER),  # ran, then lost
    Cell("tools", F.SLOW, "tool:get_weather", r"^tool 'get_weather' timed out after 10 s$", ANSWER),
    Cell("tools", F.HANG, "tool:get_weather", r"^tool 'get_weather' timed out after 10 s$", ANSWER),
    Cell("tools", F.GARBAGE, "tools:fake", r"^listed an unusable tool 42", ANSWER),  # in the listing
    Cell("tools", F.CLOSE, "tool:get_weather", CLOSED, ANSWER),
    # Realtime: a response is a request; a broken connection is reopened.
    Cell("realtime", F.RAISE_AT_START, "realtime:fake", RAISED, SORRY),
    Cell("realtime", F.RAISE_MID_STREAM, "realtime:fake", RESET, PARTIAL, {"after_chunks": 40}),
    Cell("realtime", F.SLOW, "realtime:fake", r"^timed out after 30 s waiting for a response to the user$", SORRY),
    Cell(
        "realtime",
        F.HANG,
        "realtime:fake",
        r"^timed out after 15 s waiting for the rest of the response$",
        PARTIAL,
        {"after_chunks": 40},
    ),
    Cell("realtime", F.GARBAGE, "realtime:fake", r"^returned a dict instead of a RealtimeEvent$", SORRY),
    Cell("realtime", F.CLOSE, "realtime:fake", r"^connection closed: the event stream ended$", SORRY),
    # Transport: an agent utterance is a request. GARBAGE is user audio of the
    # wrong type (reported as audio input: the session cannot trust its origin).
    Cell("transport", F.RAISE_AT_START, "transport:fake", RAISED, SORRY),
    Cell("transport", F.RAISE_MID_STREAM, "transport:fake", RESET, PARTIAL, {"after_chunks": 40}),
    Cell("transport", F.SLOW, "transport:fake", r"^timed out after 5 s for the transport to take agent audio$", SORRY),
    Cell(
        "transport",
        F.HANG,
        "transport:fake",
        r"^timed out after 5 s for the transport to take agent audio$",
        PARTIAL,
        {"after_chunks": 40},
    ),
    Cell("transport", F.GARBAGE, "audio input", r"^expected an AudioFrame, got bytes", ANSWER),
    Cell("transport", F.CLOSE, "transport:fake", r"^BrokenPipeError: injected fault: the connection closed$", SORRY),
]


def build(cell: Cell, *, fallback: bool = False, apology: str | None = APOLOGY) -> Conversation:
    """A conversation of fakes with the cell's fault in one provider."""
    kind, fault, options = cell.kind, cell.fault, cell.options
    transcripts = ["first question", "second question", "third question"]
    streaming = kind != "stt-segmented"
    stt: Any = FakeSTT(transcripts, word_seconds=0.2 if streaming else 0.0, streaming=streaming)
    llm: Any = FakeLLM([echo])
    tts: Any = FakeTTS()
    vad: Any = FakeVAD()
    eou: Any = None
    agent = Agent("Be brief.")
    connect = ConnectOptions(timeout=1.0)
    if kind.startswith("stt"):
        if fallback:
            primary = FaultySTT(FakeSTT(transcripts, streaming=False), fault, name="primary", **options)
            stt = FallbackSTT([primary, stt], connect=connect)
        else:
            stt = FaultySTT(stt, fault, **options)
    elif kind == "llm":
        faulty = FaultyLLM(FakeLLM([echo]), fault, name="primary", **options) if fallback else None
        llm = FallbackLLM([faulty, llm], connect=connect) if faulty else FaultyLLM(llm, fault, **options)
    elif kind == "tts":
        faulty = FaultyTTS(FakeTTS(), fault, name="primary", **options) if fallback else None
        tts = FallbackTTS([faulty, tts], connect=connect) if faulty else FaultyTTS(tts, fault, **options)
    elif kind == "vad":
        vad = FaultyVAD(vad, fault, **options)
    elif kind == "eou":
        eou = FaultyEOU(FakeEOU(0.9), fault, **options)
    elif kind == "tools":
        agent = Agent("Be brief.", mcp_servers=[FaultyToolSource(FakeToolSource([get_weather]), fault, **options)])
        llm = FakeLLM([FakeResponse(tool_calls=[("get_weather", '{"city": "Paris"}')]), echo])
    if kind == "realtime":
        turns = [RealtimeTurn(t, f"You said {t}.") for t in transcripts]
        if cell.outcome == SORRY and apology:
            turns.insert(1, RealtimeTurn("", apology))  # the apology is a response of the model too
        model = FaultyRealtimeModel(FakeRealtimeModel(turns), fault, **options)
        return Conversation(agent, RealTimePipeline(model), error_message=apology)
    pipeline = CascadingPipeline(stt=stt, llm=llm, tts=tts, vad=vad, turn_detector=eou)
    conv = Conversation(agent, pipeline, error_message=apology)
    if kind == "transport":
        conv.transport = FaultyTransport(FakeTransport(), fault, **options)
    return conv


def settled(conv: Conversation) -> bool:
    """Nothing is being said or decided, and the agent is not stuck mid-turn."""
    session = conv.session
    turns = getattr(session.pipeline, "turns", None)
    return (
        session.current_speech is None
        and session.agent_state in (AgentState.IDLE, AgentState.LISTENING)
        and not (turns is not None and turns.turn_pending)
    )


FULL_ANSWER = "You said first question."
FULL_AUDIO = len(FULL_ANSWER) * 0.05  # the fakes speak 50 ms per character


async def faulted_turn_then_next(conv: Conversation, expect_error: bool = True) -> tuple[list[str], float, list[str]]:
    """Speak the faulted turn and the next one.

    Returns:
        The agent turns of the faulted turn, the seconds of agent audio they
        played, and the agent turns of the next turn.
    """
    await conv.user_speaks(0.6)
    await conv.wait_for(lambda: bool(conv.agent_turns()) and (bool(conv.errors()) or not expect_error), timeout=60)
    await conv.wait_for(lambda: settled(conv), timeout=30)
    first, audio = conv.agent_turns(), conv.agent_audio_seconds()
    await conv.user_speaks(0.6)
    await conv.wait_for(lambda: len(conv.agent_turns()) > len(first), timeout=60)
    await conv.wait_for(lambda: settled(conv), timeout=30)
    return first, audio, conv.agent_turns()[len(first) :]


def check_heard(cell: Cell, heard: list[str], audio: float) -> None:
    """What the user heard in the faulted turn matches the cell's outcome."""
    assert len(heard) == 1, heard
    text = heard[0]
    if cell.outcome == SORRY:
        assert text == APOLOGY
        assert audio == pytest.approx(len(APOLOGY) * 0.05, abs=0.05)
    elif cell.outcome == ANSWER:
        assert re.fullmatch(r"You said \w+( \w+)* question\.", text), text
    else:  # the start of the answer, then silence: no apology after a partial answer
        assert text and text != APOLOGY and FULL_ANSWER.startswith(text), text
        assert 0 < audio < FULL_AUDIO - 0.1, audio
        if cell.kind != "llm":  # the whole answer was on its way: only the words played count
            assert len(text.split()) <= len(FULL_ANSWER.split()) * audio / FULL_AUDIO, (text, audio)


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_fault_is_reported_and_the_session_goes_on(cell: Cell) -> None:
    async def main() -> None:
        conv = build(cell)
        async with conv:
            heard, audio, after = await faulted_turn_then_next(conv)
        errors = conv.errors()
        assert len(errors) == 1, errors  # one fault, one clear report
        (error,) = errors
        assert error["source"] == cell.source, errors
        assert re.search(cell.message, error["message"]), errors
        assert error["recoverable"] is True
        check_heard(cell, heard, audio)
        # The session stays alive: the next turn gets an answer.
        assert len(after) == 1 and re.fullmatch(r"You said \w+ question\.", after[0]), after

    run_virtual(main())


# Once output has started a fallback does not switch (the user would hear the
# reply twice), so for the LLM and TTS a mid-stream failure is not a fallback cell.
FALLBACK_CELLS = [
    Cell(kind, fault, f"{kind.split('-')[0]}:primary", "", ANSWER)
    for kind in ("stt-segmented", "llm", "tts")
    for fault in Fault
    if fault is not F.RAISE_MID_STREAM or kind == "stt-segmented"
]


@pytest.mark.parametrize("cell", FALLBACK_CELLS, ids=[c.id for c in FALLBACK_CELLS])
def test_a_fallback_takes_over_before_the_first_output(cell: Cell) -> None:
    async def main() -> None:
        conv = build(cell, fallback=True)
        fallback = getattr(conv.session.pipeline, "stt" if cell.kind.startswith("stt") else cell.kind)
        changes: list[dict[str, Any]] = []
        fallback.events.on("availability_changed", changes.append)
        async with conv:
            heard, _, after = await faulted_turn_then_next(conv, expect_error=False)
        # The user never noticed: the backup answered both turns.
        assert heard == ["You said first question."]
        assert after == ["You said second question."]
        assert conv.errors() == []
        (change,) = changes
        assert change["provider"] == cell.source and change["available"] is False
        fault_words = {
            F.RAISE_AT_START: "failed at the start",
            F.RAISE_MID_STREAM: "failed mid-request",
            F.SLOW: "no output within 1 s",
            F.HANG: "no output within 1 s",
            F.GARBAGE: "instead of",
            F.CLOSE: "closed|ended",
        }[cell.fault]
        assert re.search(fault_words, change["error"]), change

    run_virtual(main())


@pytest.mark.parametrize("kind", ["llm", "tts", "realtime", "transport"])
def test_without_an_error_message_the_agent_stays_silent(kind: str) -> None:
    cell = next(c for c in CELLS if c.kind == kind and c.fault is F.RAISE_AT_START)

    async def main() -> None:
        conv = build(cell, apology=None)
        async with conv:
            await conv.user_speaks(0.6)
            await conv.wait_for(lambda: bool(conv.errors()) and settled(conv), timeout=60)
            await conv.silence(2.0)
            assert conv.agent_audio_seconds() == 0.0
            assert settled(conv)
            await conv.user_speaks(0.6)
            await conv.wait_for_agent_turn()
        assert conv.agent_turns()[-1] == "You said second question."
        assert conv.session.error_message is None

    run_virtual(main())


def test_a_realtime_request_that_gets_no_response_times_out_and_apologises() -> None:
    async def main() -> None:
        turns = [RealtimeTurn("", "You said hello."), RealtimeTurn("", APOLOGY), RealtimeTurn("", "Still here.")]
        model = FaultyRealtimeModel(FakeRealtimeModel(turns), F.HANG)
        async with Conversation(Agent("x"), RealTimePipeline(model), error_message=APOLOGY) as conv:
            await conv.session.send_text("hello")
            await conv.session.send_text("are you there?")
        (error,) = conv.errors()
        assert error == {
            "source": "realtime:fake",
            "message": "timed out after 30 s waiting for a response",
            "recoverable": True,
            "kind": "timeout",
        }
        assert conv.agent_turns() == [APOLOGY, "Still here."]
        assert len(model.connections) == 2  # the stuck connection was replaced
        assert conv.session.agent_state is AgentState.CLOSING

    run_virtual(main())


def test_a_provider_that_always_fails_is_retried_with_backoff_not_in_a_loop() -> None:
    async def main() -> None:
        vad = FaultyVAD(FakeVAD(), F.CLOSE, times=None)  # every stream ends at once
        pipeline = CascadingPipeline(
            stt=FakeSTT(["hi"]), llm=FakeLLM(["Hello."]), tts=FakeTTS(), vad=vad, turn_detector=None
        )
        async with Conversation(Agent("x"), pipeline) as conv:
            await conv.silence(30.0)
        # Reopened at once, then after 0.5, 1, 2, 4 s and every 5 s: not thousands of times.
        assert 8 <= len(conv.errors()) <= 12, len(conv.errors())
        assert all(e["message"].startswith("stream ended early") for e in conv.errors())

    run_virtual(main())


def test_a_late_final_after_the_turn_went_on_with_the_interim_is_not_answered_twice() -> None:
    async def main() -> None:
        stt = FakeSTT(["book a table"], word_seconds=0.2, final_delay=5.0)  # slow, not stuck
        pipeline = CascadingPipeline(stt=stt, llm=FakeLLM([echo]), tts=FakeTTS(), vad=FakeVAD(), turn_detector=None)
        async with Conversation(Agent("x"), pipeline) as conv:
            await conv.user_speaks(1.0)
            await conv.silence(15.0)
        assert conv.user_turns() == ["book a table"]
        assert conv.errors() == []

    run_virtual(main())


def test_wrapper_options() -> None:
    async def main() -> None:
        llm = FaultyLLM(
            FakeLLM(["One.", "Two.", "Three.", "Four."]),
            F.RAISE_AT_START,
            skip=1,
            times=2,
            error=OSError("boom"),
            name="flaky",
        )
        assert llm.label == "llm:flaky" and llm.model_name is None
        results = []
        for _ in range(4):
            try:
                results.append("".join([c.text async for c in llm.chat(ChatContext())]))
            except OSError as exc:
                results.append(str(exc))
        assert results == ["One.", "boom", "boom", "Two."]  # a request failing at once never reached the LLM
        assert llm.injected == 2
        with pytest.raises(ValueError, match="after_chunks"):
            FaultyLLM(FakeLLM(), F.RAISE_AT_START, after_chunks=2)

    run_virtual(main())


def test_provider_timeouts_are_validated() -> None:
    from vocalis import ProviderTimeouts

    assert ProviderTimeouts(llm_first_chunk=None).llm_first_chunk is None
    with pytest.raises(ValueError, match="llm_first_chunk"):
        ProviderTimeouts(llm_first_chunk=0)
    with pytest.raises(TypeError, match="error_message"):
        Conversation(
            Agent("x"),
            CascadingPipeline(stt=FakeSTT(), llm=FakeLLM(), tts=FakeTTS(), vad=FakeVAD(), turn_detector=None),
            error_message=42,
        )
