"""OpenAIRealtime against the local Realtime protocol server: shapes, events, failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from realtime_server import API_KEY, MODEL, RealtimeServer, ServerTurn

from vocalis.audio import AudioFrame
from vocalis.chat import ChatContext, ChatRole
from vocalis.providers.realtime import RealtimeEvent, RealtimeEventType
from vocalis.testing import tone
from vocalis.tools.function import function_tool
from vocalis_openai.realtime import OpenAIRealtime
from vocalis_openai.realtime_session import OpenAIRealtimeSession

E = RealtimeEventType
REPLY = "Order 42 ships tomorrow."


@function_tool
async def lookup_order(order_id: str) -> str:
    """Find an order."""
    return f"order {order_id} ships tomorrow"


@pytest.fixture
async def server() -> AsyncIterator[RealtimeServer]:
    before = asyncio.all_tasks()
    async with RealtimeServer() as srv:
        yield srv
    assert srv.problems == [], "the client sent requests the protocol rejects"
    await asyncio.sleep(0)  # let finished tasks be reaped before counting
    leaked = [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
    assert not leaked, f"tasks left running: {leaked}"


def make_model(server: RealtimeServer, **overrides: Any) -> OpenAIRealtime:
    settings: dict[str, Any] = {"api_key": API_KEY, "base_url": server.base_url, "silence_duration_ms": 300}
    return OpenAIRealtime(_env_file=None, **{**settings, **overrides})


def frames(seconds: float, *, loud: bool, rate: int = 24_000) -> list[AudioFrame]:
    step = int(rate * 0.02)
    whole = tone(seconds, rate) if loud else AudioFrame.silence(seconds, rate)
    return [AudioFrame(whole.data[i : i + 2 * step], rate) for i in range(0, len(whole.data), 2 * step)]


def speak(rt: OpenAIRealtimeSession, seconds: float = 0.6, then_silence: float = 0.5, rate: int = 24_000) -> None:
    for frame in frames(seconds, loud=True, rate=rate) + frames(then_silence, loud=False, rate=rate):
        rt.push_audio(frame)


async def read_until(rt: OpenAIRealtimeSession, done: Callable[[RealtimeEvent], bool]) -> list[RealtimeEvent]:
    events: list[RealtimeEvent] = []
    async with asyncio.timeout(5):
        async for event in rt:
            events.append(event)
            if done(event):
                return events
    raise AssertionError(f"the stream ended first: {[e.type for e in events]}")


async def until(condition: Callable[[], bool]) -> None:
    """Poll a condition on the server's record (bounded, not a timed assertion)."""
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.005)


async def read_audio(rt: OpenAIRealtimeSession, count: int) -> list[RealtimeEvent]:
    """Read until ``count`` audio events arrived."""
    seen = 0

    def enough(event: RealtimeEvent) -> bool:
        nonlocal seen
        seen += event.type is E.AUDIO
        return seen == count

    return await read_until(rt, enough)


def is_done(event: RealtimeEvent) -> bool:
    return event.type is E.RESPONSE_DONE


def kinds(events: list[RealtimeEvent]) -> list[E]:
    """Event types, with each run of audio and transcript deltas shown as one AUDIO."""
    out: list[E] = []
    for event in events:
        kind = E.AUDIO if event.type is E.OUTPUT_TRANSCRIPT else event.type
        if not (kind is E.AUDIO and out and out[-1] is E.AUDIO):
            out.append(kind)
    return out


# -- connecting ----------------------------------------------------------------
async def test_connect_sends_the_session_and_history(server: RealtimeServer) -> None:
    ctx = ChatContext()
    ctx.add_message(ChatRole.SYSTEM, "You track orders.")
    ctx.add_message(ChatRole.USER, "Hi, it's Ann.")
    ctx.add_message(ChatRole.ASSISTANT, "Hello Ann!")
    ctx.add_function_call("call_9", "lookup_order", '{"order_id": "7"}')
    ctx.add_function_output("call_9", "lookup_order", "delivered")
    ctx.add_message(ChatRole.DEVELOPER, "Ann is a premium customer.")
    ctx.add_message(ChatRole.USER, "   ")
    model = make_model(server, headers={"X-Gateway": "eu"}, project="proj_1", voice="alloy", speed=1.2)
    rt = await model.connect(instructions="You track orders.", tools=[lookup_order], chat_ctx=ctx)
    await rt.update_instructions("You track orders. Be brief.")
    await until(lambda: len(server.of_type("session.update")) == 2)
    await rt.aclose()
    await model.aclose()

    path, headers = server.handshakes[0]
    assert path == f"/v1/realtime?model={MODEL}"
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert headers["x-gateway"] == "eu" and headers["openai-project"] == "proj_1"
    first = server.received[0]
    assert first["type"] == "session.update"
    assert first["session"] == {
        "type": "realtime",
        "instructions": "You track orders.",
        "output_modalities": ["audio"],
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "turn_detection": {
                    "type": "server_vad",
                    "create_response": True,
                    "interrupt_response": True,
                    "silence_duration_ms": 300,
                },
                "transcription": {"model": "gpt-4o-mini-transcribe"},
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.2},
        },
        "tools": [
            {
                "type": "function",
                "name": "lookup_order",
                "description": "Find an order.",
                "parameters": lookup_order.parameters,
            }
        ],
        "tool_choice": "auto",
    }
    items = [e["item"] for e in server.of_type("conversation.item.create")]
    assert items == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi, it's Ann."}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello Ann!"}]},
        {"type": "function_call", "call_id": "call_9", "name": "lookup_order", "arguments": '{"order_id": "7"}'},
        {"type": "function_call_output", "call_id": "call_9", "output": "delivered"},
        {
            "type": "message",
            "role": "system",
            "content": [{"type": "input_text", "text": "Ann is a premium customer."}],
        },
    ]
    second = server.of_type("session.update")[1]["session"]
    assert second == {"type": "realtime", "instructions": "You track orders. Be brief."}
    assert all(isinstance(e["event_id"], str) for e in server.received)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"turn_detection": "none"}, None),
        (
            {"vad_threshold": 0.7, "prefix_padding_ms": 200, "interrupt_response": False},
            {
                "type": "server_vad",
                "create_response": True,
                "interrupt_response": False,
                "threshold": 0.7,
                "silence_duration_ms": 300,
                "prefix_padding_ms": 200,
            },
        ),
        (
            {"turn_detection": "semantic_vad", "eagerness": "high"},
            {"type": "semantic_vad", "create_response": True, "interrupt_response": True, "eagerness": "high"},
        ),
    ],
)
def test_turn_detection_settings(overrides: dict[str, Any], expected: dict[str, Any] | None) -> None:
    model = OpenAIRealtime(_env_file=None, api_key="k", silence_duration_ms=300, **overrides)
    assert model.session_config("x")["audio"]["input"]["turn_detection"] == expected


def test_optional_session_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_REALTIME_OPENAI_INPUT_TRANSCRIPTION_MODEL", "")
    monkeypatch.setenv("VOCALIS_REALTIME_OPENAI_NOISE_REDUCTION", "far_field")
    monkeypatch.setenv("VOCALIS_REALTIME_OPENAI_MAX_OUTPUT_TOKENS", "300")
    config = OpenAIRealtime(_env_file=None, api_key="k").session_config("x")
    assert "transcription" not in config["audio"]["input"] and "tools" not in config
    assert config["audio"]["input"]["noise_reduction"] == {"type": "far_field"}
    assert config["max_output_tokens"] == 300 and config["audio"]["output"]["voice"] == "marin"


# -- conversation ----------------------------------------------------------------
@pytest.mark.parametrize("legacy_names", [False, True])
async def test_user_audio_in_answer_out(server: RealtimeServer, legacy_names: bool) -> None:
    server.event_names = RealtimeServer(legacy_names=legacy_names).event_names
    server.turns = [ServerTurn(heard="where is order 42", reply=REPLY)]
    model = make_model(server)
    rt = await model.connect(instructions="x")
    speak(rt, rate=16_000)  # not the model's rate: the session converts it
    events = await read_until(rt, is_done)
    await model.aclose()

    assert kinds(events) == [
        E.SPEECH_STARTED,
        E.SPEECH_STOPPED,
        E.INPUT_TRANSCRIPT,
        E.INPUT_TRANSCRIPT,
        E.INPUT_TRANSCRIPT,
        E.INPUT_TRANSCRIPT,
        E.INPUT_TRANSCRIPT,
        E.RESPONSE_STARTED,
        E.AUDIO,
        E.RESPONSE_DONE,
    ]
    finals = [e.text for e in events if e.type is E.INPUT_TRANSCRIPT and e.is_final]
    assert finals == ["where is order 42"]
    started = next(e for e in events if e.type is E.RESPONSE_STARTED)
    output = [e for e in events if e.type in (E.AUDIO, E.OUTPUT_TRANSCRIPT, E.RESPONSE_DONE)]
    assert {e.response_id for e in output} == {started.response_id} and started.response_id
    assert "".join(e.text for e in output if e.type is E.OUTPUT_TRANSCRIPT) == REPLY
    audio = [e.frame for e in output if e.frame is not None]
    assert all(f.sample_rate == 24_000 for f in audio)
    assert sum(f.duration for f in audio) == pytest.approx(len(REPLY) * server.seconds_per_char, abs=0.001)
    assert not events[-1].interrupted
    appended = sum(len(e["audio"]) * 3 // 4 for e in server.of_type("input_audio_buffer.append")) / 48_000
    assert appended == pytest.approx(1.1, abs=0.05)
    assert server.types() == ["session.update"]  # server VAD committed and answered by itself


async def test_send_text_and_create_response(server: RealtimeServer) -> None:
    server.turns = [ServerTurn(reply="Sure.")]
    model = make_model(server)
    rt = await model.connect(instructions="x")
    await rt.send_text("Tell me a joke.")
    await rt.create_response("Be cheerful.")
    events = await read_until(rt, is_done)
    await model.aclose()
    assert kinds(events) == [E.RESPONSE_STARTED, E.AUDIO, E.RESPONSE_DONE]
    create, respond = server.of_type("conversation.item.create")[0], server.of_type("response.create")[0]
    assert create["item"] == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "Tell me a joke."}],
    }
    assert respond["response"] == {"instructions": "Be cheerful."}


async def test_manual_turns_commit_the_audio_before_asking(server: RealtimeServer) -> None:
    server.turns = [ServerTurn(heard="hello", reply="Hi.")]
    model = make_model(server, turn_detection="none")
    rt = await model.connect(instructions="x")
    speak(rt, 0.5, 0.2)
    await rt.create_response()
    events = await read_until(rt, is_done)
    await rt.create_response()  # nothing new to commit this time
    server.turns = [ServerTurn(reply="Still here.")]
    await read_until(rt, is_done)
    await model.aclose()
    assert E.SPEECH_STARTED not in kinds(events)
    assert [e.text for e in events if e.type is E.INPUT_TRANSCRIPT and e.is_final] == ["hello"]
    assert server.types() == ["session.update", "input_audio_buffer.commit", "response.create", "response.create"]
    assert server.of_type("response.create")[0].keys() == {"type", "event_id"}


async def test_function_call_round_trip(server: RealtimeServer) -> None:
    server.turns = [ServerTurn(tool_calls=[("lookup_order", '{"order_id": "42"}')]), ServerTurn(reply=REPLY)]
    model = make_model(server)
    rt = await model.connect(instructions="x", tools=[lookup_order])
    await rt.create_response()
    events = await read_until(rt, is_done)
    calls = [c for e in events if e.type is E.FUNCTION_CALL for c in e.tool_calls]
    # Announced three times (arguments.done, output_item.done, response.done): reported once.
    assert [(c.name, c.arguments) for c in calls] == [("lookup_order", '{"order_id": "42"}')]
    issued = next(e for e in server.sent if e["type"] == "response.function_call_arguments.done")
    assert calls[0].call_id == issued["call_id"]
    await rt.send_tool_output(calls[0].call_id, "order 42 ships tomorrow")
    await rt.create_response()
    answer = await read_until(rt, is_done)
    await model.aclose()
    assert "".join(e.text for e in answer if e.type is E.OUTPUT_TRANSCRIPT) == REPLY
    output = server.of_type("conversation.item.create")[0]["item"]
    assert output == {"type": "function_call_output", "call_id": issued["call_id"], "output": "order 42 ships tomorrow"}


async def test_tool_errors_are_sent_as_error_json(server: RealtimeServer) -> None:
    server.turns = [ServerTurn(tool_calls=[("lookup_order", "{not json")])]
    model = make_model(server)
    rt = await model.connect(instructions="x", tools=[lookup_order])
    await rt.create_response()
    call = next(c for e in await read_until(rt, is_done) for c in e.tool_calls)
    assert call.arguments == "{not json"  # passed on raw: the session reports it back to the model
    await rt.send_tool_output(call.call_id, "bad arguments", is_error=True)
    await until(lambda: bool(server.of_type("conversation.item.create")))
    await model.aclose()
    output = server.of_type("conversation.item.create")[0]["item"]["output"]
    assert json.loads(output) == {"error": "bad arguments"}


# -- interruptions -------------------------------------------------------------------
@pytest.mark.parametrize(("played", "end_ms"), [(0.12, 120), (10.0, 200)])
async def test_cancel_truncates_to_what_was_heard(server: RealtimeServer, played: float, end_ms: int) -> None:
    server.turns = [ServerTurn(reply="A long answer that the user will cut short.", hold_after=5)]
    model = make_model(server)
    rt = await model.connect(instructions="x")
    await rt.create_response()
    await read_audio(rt, 5)  # the server holds after five 40 ms chunks
    await rt.cancel_response(played_seconds=played)
    events = await read_until(rt, is_done)
    await until(lambda: any(e["type"] == "conversation.item.truncated" for e in server.sent))
    await model.aclose()
    assert events[-1].interrupted
    response_id = next(e for e in server.sent if e["type"] == "response.created")["response"]["id"]
    item_id = next(e for e in server.sent if e["type"] == "response.output_audio.delta")["item_id"]
    assert [{k: v for k, v in e.items() if k != "event_id"} for e in server.received[1:]] == [
        {"type": "response.create"},
        {"type": "response.cancel", "response_id": response_id},
        {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": end_ms},
    ]


async def test_server_side_barge_in_needs_only_a_truncate(server: RealtimeServer) -> None:
    server.turns = [ServerTurn(heard="hi", reply="A long answer that the user will cut short.", hold_after=4)]
    model = make_model(server)
    rt = await model.connect(instructions="x")
    speak(rt)
    await read_audio(rt, 4)
    speak(rt, 0.1, 0.0)  # the user talks over the answer: the server cancels it itself
    events = await read_until(rt, is_done)
    assert [e.type for e in events] == [E.SPEECH_STARTED, E.RESPONSE_DONE] and events[-1].interrupted
    await rt.cancel_response(played_seconds=0.1)
    await until(lambda: bool(server.of_type("conversation.item.truncate")))
    await model.aclose()
    assert server.types() == ["session.update", "conversation.item.truncate"]  # no response.cancel
    assert server.of_type("conversation.item.truncate")[0]["audio_end_ms"] == 100
    assert next(e for e in server.sent if e["type"] == "response.done")["response"]["status_details"] == {
        "type": "cancelled",
        "reason": "turn_detected",
    }


async def test_websocket_base_url_overrides_base_url(server: RealtimeServer) -> None:
    websocket = f"ws://127.0.0.1:{server.port}/v1"
    model = make_model(server, base_url="http://127.0.0.1:9/v1", websocket_base_url=websocket)
    rt = await model.connect(instructions="x")
    await model.aclose()
    assert rt.errors == [] and server.handshakes[0][0] == f"/v1/realtime?model={MODEL}"
