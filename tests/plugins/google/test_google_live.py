"""GeminiLive against the local Live API server: setup, audio both ways, tools, text, interruptions."""

from __future__ import annotations

import json

import pytest
from gemini_live_helpers import E, is_done, kinds, make_live, read_until, speak, spoken, until
from gemini_live_server import API_KEY, MODEL, PATH, LiveServer, LiveTurn

from vocalis.chat import ChatContext, ChatRole
from vocalis.tools.function import function_tool

REPLY = "Order 42 ships tomorrow."


@function_tool
async def lookup_order(order_id: str) -> str:
    """Find an order."""
    return f"order {order_id} ships tomorrow"


async def test_setup_comes_first_once_then_the_history(live: LiveServer) -> None:
    ctx = ChatContext()
    ctx.add_message(ChatRole.SYSTEM, "You track orders.")
    ctx.add_message(ChatRole.USER, "Hi, it's Ann.")
    ctx.add_message(ChatRole.ASSISTANT, "Hello Ann!")
    ctx.add_function_call("call_9", "lookup_order", '{"order_id": "7"}')
    ctx.add_function_output("call_9", "lookup_order", "delivered")
    model = make_live(live, voice="Kore", language="en-US", start_sensitivity="low", temperature=0.6)
    rt = await model.connect(instructions="You track orders.", tools=[lookup_order], chat_ctx=ctx)
    await rt.update_instructions("You track orders. Be brief.")
    await until(lambda: len(live.of_kind("clientContent")) == 2)
    await rt.aclose()
    await model.aclose()

    path, headers = live.handshakes[0]
    assert path == PATH and headers["x-goog-api-key"] == API_KEY and API_KEY not in path
    first, *rest = [message for _, message in live.received]
    assert first == {
        "setup": {
            "model": f"models/{MODEL}",
            "generationConfig": {
                "responseModalities": ["AUDIO"],
                "speechConfig": {
                    "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}},
                    "languageCode": "en-US",
                },
                "temperature": 0.6,
            },
            "systemInstruction": {"parts": [{"text": "You track orders."}]},
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "lookup_order",
                            "description": "Find an order.",
                            "parameters": {
                                "type": "object",
                                "properties": {"order_id": {"type": "string"}},
                                "required": ["order_id"],
                            },
                        }
                    ]
                }
            ],
            "realtimeInputConfig": {
                "automaticActivityDetection": {
                    "startOfSpeechSensitivity": "START_SENSITIVITY_LOW",
                    "silenceDurationMs": 300,
                }
            },
            "inputAudioTranscription": {},
            "outputAudioTranscription": {},
            "contextWindowCompression": {"slidingWindow": {}},
            "sessionResumption": {},
        }
    }
    assert rest[0] == {
        "clientContent": {
            "turns": [
                {"role": "user", "parts": [{"text": "Hi, it's Ann."}]},
                {
                    "role": "model",
                    "parts": [
                        {"text": "Hello Ann!"},
                        {"text": '(I called lookup_order with {"order_id": "7"}; it returned: delivered)'},
                    ],
                },
            ],
            "turnComplete": False,
        }
    }
    assert rest[1]["clientContent"]["turns"][0]["parts"][0]["text"].endswith("You track orders. Be brief.)")
    assert [kind for _, m in live.sent for kind in m][:2] == ["setupComplete", "sessionResumptionUpdate"]


async def test_audio_in_audio_out_with_both_transcripts(live: LiveServer) -> None:
    live.turns = [LiveTurn(heard="where is order 42", reply=REPLY)]
    model = make_live(live)
    rt = await model.connect(instructions="Be brief.")
    speak(rt, rate=24_000)  # resampled to the 16 kHz the API takes
    events = await read_until(rt, is_done)
    await rt.aclose()

    assert kinds(events) == [E.INPUT_TRANSCRIPT, E.RESPONSE_STARTED, E.AUDIO, E.INPUT_TRANSCRIPT, E.RESPONSE_DONE]
    partial = [e.text for e in events if e.type is E.INPUT_TRANSCRIPT and not e.is_final]
    final = [e.text for e in events if e.type is E.INPUT_TRANSCRIPT and e.is_final]
    assert "".join(partial).strip() == "where is order 42" and final == ["where is order 42"]
    seconds, text = spoken(events)
    assert text.strip() == REPLY and seconds == pytest.approx(len(REPLY) * 0.04, abs=0.05)
    assert {e.frame.sample_rate for e in events if e.frame is not None} == {24_000}
    assert live.mime_types == {"audio/pcm;rate=16000"}
    started = next(e for e in events if e.type is E.RESPONSE_STARTED)
    assert not events[-1].interrupted and events[-1].response_id == started.response_id


async def test_a_tool_call_and_its_response(live: LiveServer) -> None:
    live.turns = [
        LiveTurn(heard="where is order 42", tool_calls=[("lookup_order", {"order_id": "42"})]),
        LiveTurn(reply=REPLY),
    ]
    model = make_live(live)
    rt = await model.connect(instructions="Track orders.", tools=[lookup_order])
    speak(rt)
    events = await read_until(rt, is_done)
    [call_event] = [e for e in events if e.type is E.FUNCTION_CALL]
    [call] = call_event.tool_calls
    assert (call.name, json.loads(call.arguments)) == ("lookup_order", {"order_id": "42"})
    await rt.send_tool_output(call.call_id, "order 42 ships tomorrow")
    assert live.of_kind("toolResponse") == []  # held until the answer is asked for
    await rt.create_response()
    answer = await read_until(rt, is_done)
    await rt.aclose()

    assert live.of_kind("toolResponse") == [
        {
            "functionResponses": [
                {"id": call.call_id, "name": "lookup_order", "response": {"output": "order 42 ships tomorrow"}}
            ]
        }
    ]
    assert call.call_id in {c["id"] for _, m in live.sent if "toolCall" in m for c in m["toolCall"]["functionCalls"]}
    assert spoken(answer)[1].strip() == REPLY


@pytest.mark.parametrize("text_frames", [False, True])
async def test_text_turns_and_requested_answers(text_frames: bool) -> None:
    async with LiveServer([LiveTurn(reply="Hello there."), LiveTurn(reply="Bye.")], text_frames=text_frames) as server:
        model = make_live(server)
        rt = await model.connect(instructions="Be brief.")
        await rt.send_text("Hi!")
        await rt.create_response()
        first = await read_until(rt, is_done)
        await rt.create_response("Say goodbye.")
        second = await read_until(rt, is_done)
        await rt.aclose()
    assert server.problems == []
    assert server.of_kind("clientContent") == [
        {"turns": [{"role": "user", "parts": [{"text": "Hi!"}]}], "turnComplete": False},
        {"turnComplete": True},
        {"turns": [{"role": "user", "parts": [{"text": "Say goodbye."}]}], "turnComplete": True},
    ]
    assert spoken(first)[1].strip() == "Hello there." and spoken(second)[1].strip() == "Bye."


async def test_the_server_interrupts_when_the_user_talks_over_it(live: LiveServer) -> None:
    live.turns = [
        LiveTurn(heard="tell me a story", reply="Once upon a time " * 5, hold_after=3),
        LiveTurn(heard="stop", reply="Okay."),
    ]
    model = make_live(live)
    rt = await model.connect(instructions="Tell stories.")
    speak(rt)
    await read_until(rt, lambda e: e.type is E.AUDIO)
    speak(rt, seconds=0.3)  # barge-in
    cut = await read_until(rt, is_done)
    assert kinds(cut)[-2:] == [E.SPEECH_STARTED, E.RESPONSE_DONE] and cut[-1].interrupted
    answer = await read_until(rt, is_done)
    await rt.cancel_response(played_seconds=0.05)  # the pipeline's follow-up: nothing left to stop
    await rt.aclose()
    assert E.SPEECH_STOPPED in kinds(answer) and spoken(answer)[1].strip() == "Okay."
    assert live.interruptions == 1


async def test_a_client_cancel_stops_the_answer_and_says_what_was_heard(live: LiveServer) -> None:
    story = "one two three four five six seven eight nine ten"
    live.turns = [LiveTurn(reply=story, hold_after=5), LiveTurn(reply="Sure.")]
    model = make_live(live)
    rt = await model.connect(instructions="Count.")
    await rt.create_response("Count to ten.")
    events = await read_until(rt, lambda e: e.type is E.AUDIO)
    await until(lambda: sum(1 for _, m in live.sent if "modelTurn" in m.get("serverContent", {})) == 5)
    await rt.cancel_response(played_seconds=0.2)
    events += await read_until(rt, is_done)
    assert events[-1].interrupted
    await until(lambda: live.interruptions == 1)  # the note was a client message: it cut the generation
    await rt.create_response()
    answer = await read_until(rt, is_done)
    await rt.aclose()
    note = live.of_kind("clientContent")[1]
    assert note["turnComplete"] is False
    assert note["turns"][0]["parts"][0]["text"].startswith('(The user interrupted you; they heard only: "one')
    assert spoken(answer)[1].strip() == "Sure."


async def test_manual_activity_detection(live: LiveServer) -> None:
    live.turns = [LiveTurn(heard="hello", reply="Hi.", hold_after=2), LiveTurn(heard="again", reply="Yes.")]
    model = make_live(live, automatic_activity_detection=False, silence_duration_ms=None)
    rt = await model.connect(instructions="Be brief.")
    speak(rt)
    await rt.create_response()
    await read_until(rt, lambda e: e.type is E.AUDIO)
    await rt.cancel_response(played_seconds=0.01)
    speak(rt)
    await rt.create_response()
    await read_until(rt, lambda e: e.type is E.RESPONSE_DONE and not e.interrupted)
    await rt.aclose()
    assert live.of_kind("setup")[0]["realtimeInputConfig"] == {"automaticActivityDetection": {"disabled": True}}
    signals = [next(iter(m)) for m in live.of_kind("realtimeInput") if "audio" not in m]
    assert signals == ["activityStart", "activityEnd", "activityStart", "activityEnd"]


async def test_voice_activity_signals_are_the_users_speech() -> None:
    async with LiveServer([LiveTurn(heard="hello", reply="Hi.")], voice_activity=True) as server:
        rt = await make_live(server).connect(instructions="Be brief.")
        speak(rt)
        events = await read_until(rt, is_done)
        await rt.aclose()
    assert server.problems == []
    assert kinds(events)[:4] == [E.SPEECH_STARTED, E.SPEECH_STOPPED, E.INPUT_TRANSCRIPT, E.RESPONSE_STARTED]
