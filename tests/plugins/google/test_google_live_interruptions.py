"""Whose ``interrupted`` is it? The server sends one when the user talks over the
model (its VAD, or the user's ``activityStart`` with manual detection) and when a
client message stops the turn: the cancel's note (a ``clientContent``), the
cancel's ``activityStart`` with manual detection, or any other ``clientContent``.
Only the first is the user's speech (SPEECH_STARTED, which the pipeline takes for
a barge-in); the others end the response as interrupted and say nothing more.
"""

from __future__ import annotations

from gemini_live_helpers import E, frames, is_done, kinds, make_live, read_until, speak, spoken, until
from gemini_live_server import LiveServer, LiveTurn

from vocalis.providers.realtime import RealtimeEvent
from vocalis_google.live_session import GeminiLiveSession

STORY = "one two three four five six seven eight nine ten eleven twelve"


def is_audio(event: RealtimeEvent) -> bool:
    return event.type is E.AUDIO


def talk(rt: GeminiLiveSession, seconds: float, *, loud: bool) -> None:
    for frame in frames(seconds, loud=loud):
        rt.push_audio(frame)


async def test_an_own_cancel_is_no_speech_and_the_users_barge_in_still_is(live: LiveServer) -> None:
    live.turns = [
        LiveTurn(reply=STORY, hold_after=3),
        LiveTurn(heard="go on", reply=STORY, hold_after=3),
        LiveTurn(heard="stop", reply="Okay.", hold_after=3),
    ]
    rt = await make_live(live).connect(instructions="Count.")
    await rt.create_response("Count.")
    events = await read_until(rt, is_audio)
    await rt.cancel_response(played_seconds=0.04)  # the note stops the server's turn: `interrupted`
    events += await read_until(rt, is_done)
    assert events[-1].interrupted
    await until(lambda: live.interruptions == 1)
    speak(rt)  # the user asks for more: a new answer after the cancelled one's `interrupted`
    events += await read_until(rt, is_audio)
    assert E.SPEECH_STARTED not in kinds(events), f"a cancel reported as user speech: {kinds(events)}"

    talk(rt, 0.3, loud=True)  # the user talks over the answer: the server's VAD interrupts it
    cut = await read_until(rt, is_done)
    assert kinds(cut)[-2:] == [E.SPEECH_STARTED, E.RESPONSE_DONE] and cut[-1].interrupted
    await rt.cancel_response(played_seconds=0.05)  # the pipeline's follow-up: a note, nothing to stop
    talk(rt, 0.4, loud=False)  # the user's turn ends: the next answer
    answer = await read_until(rt, is_audio)
    assert E.SPEECH_STOPPED in kinds(answer) and E.SPEECH_STARTED not in kinds(answer)

    talk(rt, 0.3, loud=True)  # and a barge-in on that one is the user's again (nothing of ours pending)
    again = await read_until(rt, is_done)
    await rt.aclose()
    assert kinds(again)[-2:] == [E.SPEECH_STARTED, E.RESPONSE_DONE] and again[-1].interrupted
    assert live.interruptions == 3


async def test_a_cancel_while_the_server_holds_the_turn_for_playback() -> None:
    """The service keeps a turn open until its audio could have played: a cancel
    then (all audio in, RESPONSE_DONE reported) still brings an `interrupted`."""
    story = "word " * 60  # seconds of audio: the turn is still open when the note comes
    async with LiveServer([LiveTurn(reply=story), LiveTurn(reply="Sure.")], realtime_playback=True) as server:
        rt = await make_live(server).connect(instructions="Talk.")
        await rt.create_response("Talk.")
        events = await read_until(rt, is_done)
        assert not events[-1].interrupted  # generationComplete: all of it was sent
        await rt.cancel_response(played_seconds=0.2)
        await until(lambda: server.interruptions == 1)
        await rt.create_response()
        events += await read_until(rt, is_done)
        await rt.aclose()
    assert server.problems == []
    assert E.SPEECH_STARTED not in kinds(events) and spoken(events)[1].strip().endswith("Sure.")


async def test_manual_activity_own_cancel_versus_the_users_activity(live: LiveServer) -> None:
    live.turns = [
        LiveTurn(heard="hello", reply=STORY, hold_after=2),
        LiveTurn(heard="again", reply=STORY, hold_after=2),
    ]
    rt = await make_live(live, automatic_activity_detection=False, silence_duration_ms=None).connect(
        instructions="Count."
    )
    speak(rt)
    await rt.create_response()  # activityEnd: the answer
    events = await read_until(rt, is_audio)
    await rt.cancel_response(played_seconds=0.01)  # our activityStart stops the turn: `interrupted`
    events += await read_until(rt, is_done)
    assert events[-1].interrupted
    await until(lambda: live.interruptions == 1)
    speak(rt)  # inside the activity the cancel opened
    await rt.create_response()
    events += await read_until(rt, is_audio)
    assert E.SPEECH_STARTED not in kinds(events), f"a cancel reported as user speech: {kinds(events)}"

    talk(rt, 0.1, loud=True)  # the user's audio opens an activity over the answer: a barge-in
    cut = await read_until(rt, is_done)
    await rt.aclose()
    assert kinds(cut)[-2:] == [E.SPEECH_STARTED, E.RESPONSE_DONE] and cut[-1].interrupted
    signals = [next(iter(m)) for m in live.of_kind("realtimeInput") if "audio" not in m]
    assert signals == ["activityStart", "activityEnd", "activityStart", "activityEnd", "activityStart"]


async def test_text_sent_over_an_answer_is_no_speech(live: LiveServer) -> None:
    live.turns = [LiveTurn(reply=STORY, hold_after=3), LiveTurn(reply="Fine.")]
    rt = await make_live(live).connect(instructions="Count.")
    await rt.create_response("Count.")
    events = await read_until(rt, is_audio)
    await rt.send_text("Actually, never mind.")  # a clientContent: it stops the turn
    events += await read_until(rt, is_done)
    assert events[-1].interrupted
    await rt.create_response()
    events += await read_until(rt, is_done)
    await rt.aclose()
    assert E.SPEECH_STARTED not in kinds(events) and live.interruptions == 1
    assert spoken(events)[1].strip().endswith("Fine.")
