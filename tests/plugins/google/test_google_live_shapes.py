"""GeminiLive fed server messages shaped like the real service's, field for field.

Shapes from the Live API reference (ai.google.dev/api/live:
``BidiGenerateContentServerMessage``, ``BidiGenerateContentServerContent``,
``BidiGenerateContentTranscription{text,finished}``, ``BidiGenerateContentToolCall``,
``BidiGenerateContentToolCallCancellation``, ``SessionResumptionUpdate``, ``GoAway``,
``UsageMetadata``) and the Gemini 3 Live migration notes (one message may carry
audio, its transcription and ``turnComplete`` together; messages holding only
``usageMetadata``). Fields and messages the client does not know are ignored.
"""

from __future__ import annotations

import base64
import json

import pytest
from gemini_live_helpers import E, is_done, kinds, make_live, read_until, spoken, until
from gemini_live_server import LiveServer, LiveTurn

from vocalis.testing import tone
from vocalis.tools.function import function_tool
from vocalis_google.errors import parse_duration

PCM = tone(0.25, 24_000).data  # a quarter second of the model's voice


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@function_tool
async def get_time(city: str = "here") -> str:
    """The time."""
    return "noon"


async def test_a_model_turn_as_the_service_sends_it(live: LiveServer) -> None:
    rt = await make_live(live).connect(instructions="Be brief.")
    c = live.connections[0]
    await c.emit({"serverContent": {"inputTranscription": {"text": " What"}}})
    await c.emit({"serverContent": {"inputTranscription": {"text": " time is it?", "finished": True}}})
    await c.emit({"someFutureMessage": {"x": 1}})
    await c.emit({"serverContent": {}, "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3}})
    await c.emit({"serverContent": {"modelTurn": {"parts": [{"text": "**Telling the time**", "thought": True}]}}})
    first = {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": b64(PCM[:1001])}}  # half a sample cut
    turn = {"modelTurn": {"role": "model", "parts": [first]}, "outputTranscription": {"text": "It's"}}
    await c.emit({"serverContent": turn})
    rest = {"inlineData": {"mimeType": "audio/L16;codec=pcm;rate=24000", "data": b64(PCM[1001:])}}
    image = {"inlineData": {"mimeType": "image/png", "data": b64(b"\x89PNG")}}
    code = {"executableCode": {"language": "PYTHON", "code": "print(1)"}}
    await c.emit(
        {
            "serverContent": {
                "modelTurn": {"parts": [rest, image, code]},
                "outputTranscription": {"text": " noon."},
                "groundingMetadata": {"webSearchQueries": ["time now"]},
            }
        }
    )
    await c.emit({"serverContent": {"generationComplete": True}})
    events = await read_until(rt, is_done)
    usage = {
        "promptTokenCount": 40,
        "responseTokenCount": 12,
        "totalTokenCount": 52,
        "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 30}],
    }
    await c.emit({"serverContent": {"turnComplete": True, "waitingForInput": True}, "usageMetadata": usage})
    await until(lambda: rt.usage.get("totalTokenCount") == 55)
    # Gemini 3: a whole short answer, its transcription and both ends in one message.
    bye = {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": b64(PCM[:4800])}}
    whole = {"modelTurn": {"parts": [bye]}, "outputTranscription": {"text": "Bye."}}
    await c.emit({"serverContent": {**whole, "generationComplete": True, "turnComplete": True}})
    second = await read_until(rt, is_done)
    await rt.aclose()
    assert kinds(second) == [E.RESPONSE_STARTED, E.AUDIO, E.RESPONSE_DONE]
    assert spoken(second) == (pytest.approx(0.1), "Bye.") and second[0].response_id != events[1].response_id

    assert kinds(events) == [E.INPUT_TRANSCRIPT, E.RESPONSE_STARTED, E.AUDIO, E.RESPONSE_DONE]
    assert [e.text for e in events if e.type is E.INPUT_TRANSCRIPT and e.is_final] == ["What time is it?"]
    seconds, text = spoken(events)
    assert text == "It's noon." and seconds == pytest.approx(len(PCM) / 48_000)
    audio = b"".join(e.frame.data for e in events if e.frame is not None)
    assert audio == PCM and {e.frame.sample_rate for e in events if e.frame is not None} == {24_000}
    assert rt.usage["promptTokenCount"] == 43 and "promptTokensDetails" not in rt.usage
    assert not events[-1].interrupted and rt.errors == []


async def test_frames_that_are_no_message_are_skipped(live: LiveServer) -> None:
    live.setup_replies = [b"", {"setupComplete": {"sessionId": "7f3c"}}]
    live.turns = [LiveTurn(reply="Still fine.")]
    rt = await make_live(live).connect(instructions="Be brief.")
    c = live.connections[0]
    await c.ws.send_bytes(b"")
    await c.ws.send_str("not json")
    await c.ws.send_str("[1, 2]")
    await c.emit({"serverContent": {"modelTurn": {"parts": []}}})
    await c.emit({"serverContent": {"modelTurn": {"parts": [{"inlineData": {"mimeType": "audio/pcm", "data": ""}}]}}})
    await rt.create_response("Say so.")
    events = await read_until(rt, is_done)
    await rt.aclose()
    assert spoken(events)[1].strip() == "Still fine." and rt.errors == []


async def test_calls_with_null_or_no_args_and_a_cancelled_one(live: LiveServer) -> None:
    live.turns = [LiveTurn(reply="It is noon.")]
    rt = await make_live(live).connect(instructions="Tell the time.", tools=[get_time])
    c = live.connections[0]
    c.open_calls.update({"fc_a": "get_time", "fc_b": "get_time", "fc_c": "get_time"})
    calls = [
        {"id": "fc_a", "name": "get_time", "args": None},
        {"id": "fc_b", "name": "get_time"},
        {"id": "fc_c", "name": "get_time", "args": {"city": "Oslo"}},
    ]
    await c.emit({"toolCall": {"functionCalls": calls}})
    events = await read_until(rt, lambda e: e.type is E.FUNCTION_CALL)
    got = events[-1].tool_calls
    assert [(t.call_id, json.loads(t.arguments)) for t in got] == [
        ("fc_a", {}),
        ("fc_b", {}),
        ("fc_c", {"city": "Oslo"}),
    ]
    del c.open_calls["fc_b"]  # what the server forgets when it cancels
    await c.emit({"toolCallCancellation": {"ids": ["fc_b"]}})
    await until(lambda: "fc_b" in rt._cancelled)
    for call_id in ("fc_a", "fc_b", "fc_c"):
        await rt.send_tool_output(call_id, "noon")
    await rt.create_response()
    answer = await read_until(rt, lambda e: is_done(e) and e.response_id != events[-1].response_id)
    await rt.aclose()
    [response] = live.of_kind("toolResponse")
    assert [r["id"] for r in response["functionResponses"]] == ["fc_a", "fc_c"]
    assert spoken(answer)[1].strip() == "It is noon."


async def test_updates_that_are_not_resumable_are_not_resumed_from(live: LiveServer) -> None:
    live.turns = [LiveTurn(reply="Back again.")]
    rt = await make_live(live).connect(instructions="Be brief.")
    c = live.connections[0]
    await until(lambda: any("sessionResumptionUpdate" in m for _, m in live.sent))
    await c.emit({"sessionResumptionUpdate": {"newHandle": "not-a-handle", "resumable": False}})
    await c.emit({"sessionResumptionUpdate": {}})
    await c.emit({"sessionResumptionUpdate": {"resumable": True, "lastConsumedClientMessageIndex": "3"}})
    await c.ws.close(code=1011, message=b"Internal error occurred.")
    await until(lambda: len(live.connections) == 2 and bool(live.connections[1].setup))
    await rt.create_response("Say you are back.")
    answer = await read_until(rt, is_done)
    await rt.aclose()
    assert live.of_kind("setup")[1]["sessionResumption"] == {"handle": "handle_001"}
    assert spoken(answer)[1].strip() == "Back again." and rt.resumptions == 1


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("50s", 50.0),
        ("1.5s", 1.5),
        ("0.000340s", 0.00034),
        ("-2s", 0.0),
        ("", 0.0),
        (None, 0.0),
        ("soon", 0.0),
        (3, 3.0),
    ],
)
def test_durations_as_the_api_writes_them(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)
