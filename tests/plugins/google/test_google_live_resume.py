"""GeminiLive keeps the conversation across sockets: goAway and drops, resumed with the latest handle."""

from __future__ import annotations

import pytest
from gemini_live_helpers import E, is_done, make_live, read_until, speak, spoken, until
from gemini_live_server import LiveServer, LiveTurn

from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.testing import run_virtual


async def test_go_away_moves_to_a_new_socket_with_the_latest_handle(live: LiveServer) -> None:
    live.turns = [LiveTurn(heard="hi", reply="Hello.", go_away=50), LiveTurn(heard="and now", reply="Still here.")]
    model = make_live(live)
    rt = await model.connect(instructions="Be brief.")
    speak(rt)
    await read_until(rt, is_done)
    await until(lambda: len(live.connections) == 2 and bool(live.connections[1].setup))
    speak(rt)
    answer = await read_until(rt, is_done)
    await rt.aclose()

    _, new = live.connections
    handles = [
        m["sessionResumptionUpdate"]["newHandle"] for i, m in live.sent if i == 0 and "sessionResumptionUpdate" in m
    ]
    assert new.setup["sessionResumption"] == {"handle": handles[-1]} and new.resumed_from == handles[-1]
    assert ("model", "Hello.") in new.history  # the server restored the conversation
    assert live.of_kind("setup")[0] == {**new.setup, "sessionResumption": {}}  # the same setup otherwise
    assert spoken(answer)[1].strip() == "Still here." and rt.resumptions == 1
    assert live.expired == 0  # moved before the deadline


def test_go_away_mid_turn_waits_for_the_turn_to_end() -> None:
    async def main() -> None:
        turns = [
            LiveTurn(tool_calls=[("lookup", {"id": "7"})], go_away=30, go_away_first=True),
            LiveTurn(reply="Found it."),
        ]
        async with LiveServer(turns) as server:
            rt = await make_live(server).connect(instructions="Be brief.")
            await rt.create_response("Look up 7.")
            [call] = [c for e in await read_until(rt, is_done) for c in e.tool_calls]
            assert len(server.connections) == 1  # a call is open: the move waits
            await rt.send_tool_output(call.call_id, "found")
            await rt.create_response()
            answer = await read_until(rt, is_done)
            await until(lambda: len(server.connections) == 2)
            await rt.aclose()
        assert server.problems == [] and server.expired == 0
        assert server.of_kind("toolResponse")[0]["functionResponses"][0]["id"] == call.call_id
        assert spoken(answer)[1].strip() == "Found it."

    run_virtual(main())


def test_go_away_moves_at_the_deadline_when_no_pause_comes() -> None:
    async def main() -> None:
        turns = [
            LiveTurn(reply="A very long story " * 20, go_away=30, go_away_first=True, hold_after=3),
            LiveTurn(reply="Yes?"),
        ]
        async with LiveServer(turns) as server:
            rt = await make_live(server).connect(instructions="Be brief.")
            await rt.create_response("Tell a story.")
            cut = await read_until(rt, is_done, timeout=60)  # the forced move ends the answer
            await rt.create_response("Hello?")
            answer = await read_until(rt, is_done)
            await rt.aclose()
        assert server.problems == [] and server.expired == 0 and len(server.connections) == 2
        assert cut[-1].interrupted and spoken(answer)[1].strip() == "Yes?"

    run_virtual(main())


async def test_a_dropped_connection_is_resumed_and_the_cut_answer_ended(live: LiveServer) -> None:
    live.turns = [
        LiveTurn(reply="First."),
        LiveTurn(reply="This answer is cut off midway.", drop_after=2),
        LiveTurn(reply="Back again."),
    ]
    model = make_live(live)
    rt = await model.connect(instructions="Be brief.")
    await rt.create_response("One.")
    await read_until(rt, is_done)
    await rt.create_response("Two.")
    cut = await read_until(rt, is_done)
    assert cut[-1].interrupted and spoken(cut)[0] > 0
    await until(lambda: len(live.connections) == 2 and bool(live.connections[1].setup))
    await rt.create_response("Three.")
    answer = await read_until(rt, is_done)
    await rt.aclose()
    assert live.connections[1].resumed_from is not None and ("model", "First.") in live.connections[1].history
    assert spoken(answer)[1].strip() == "Back again."


async def test_a_drop_without_resumption_ends_the_stream(live: LiveServer) -> None:
    live.turns = [LiveTurn(reply="This answer is cut off midway.", drop_after=1)]
    model = make_live(live, session_resumption=False)
    rt = await model.connect(instructions="Be brief.")
    await rt.create_response("Talk.")
    events = []
    with pytest.raises(ProviderError) as caught:
        async for event in rt:
            events.append(event)
    assert E.AUDIO in [e.type for e in events]
    assert (caught.value.kind, caught.value.recoverable) == (ErrorKind.CONNECTION, True)
    assert "sessionResumption" not in live.of_kind("setup")[0] and len(live.connections) == 1
    await rt.aclose()


async def test_a_refused_resumption_ends_the_stream(live: LiveServer) -> None:
    live.turns = [LiveTurn(reply="This answer is cut off midway.", drop_after=1)]
    model = make_live(live)
    rt = await model.connect(instructions="Be brief.")
    live.handles.clear()  # the server forgot the session: the handle is refused
    await rt.create_response("Talk.")
    with pytest.raises(ProviderError) as caught:
        async for _ in rt:
            pass
    assert caught.value.kind is ErrorKind.BAD_REQUEST and "1007" in str(caught.value)
    assert caught.value.recoverable  # a new session with the history can carry on
    await rt.aclose()
