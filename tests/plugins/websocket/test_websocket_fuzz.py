"""Malformed transport messages on ``/ws`` and ``/twilio``, property-based.

Random bytes, invalid JSON, JSON of the wrong shape, deep nesting, base64
garbage, invalid UTF-8 and oversized messages: each bad message gives an
``error`` event (``/ws``; on ``/twilio`` the session's error event, since
Twilio has no channel for it) or closes the socket with a clear RFC 6455
code, and the server and the other sessions keep working.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ws_harness import TOKEN, Harness, other_tasks, pcm_client, silence_pcm, tone_pcm, twilio_call

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=10)
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8,
)
wrong_shapes = st.one_of(
    json_values,
    st.fixed_dictionaries({"type": st.one_of(json_values, st.sampled_from(["dance", "TEXT", "", "x" * 5000]))}),
    st.fixed_dictionaries(
        {
            "type": st.just("text"),
            "text": st.one_of(
                st.none(),
                st.integers(),
                st.lists(st.text(max_size=3), max_size=2),
                st.sampled_from(["", "   ", "\x00", "\u200b"]),
            ),
        }
    ),
)
good_text = st.fixed_dictionaries(
    {"type": st.just("text"), "text": st.sampled_from(["hi", "e\u0301 👍", "\ud800 x", "tab\tnew\nline"])}
)


class QuickHarness(Harness):
    """The harness with short agent audio, so turns end quickly in real time."""

    def make_pipeline(self) -> Any:
        pipeline = super().make_pipeline()
        pipeline.tts.seconds_per_char = 0.002
        return pipeline


def _dumps(value: Any) -> str:
    return json.dumps(value)


text_messages = st.one_of(
    st.text(max_size=30).filter(lambda t: not _is_json(t)),  # random text that is not JSON
    st.sampled_from(["{", "{'type': 'text'}", "[" * 50_000, "NaN", "1e999", '{"type": "text", "text": "a"' + ", " * 3]),
    wrong_shapes.map(_dumps),
    good_text.map(_dumps),
)
binary_messages = st.one_of(st.binary(max_size=64), st.integers(1, 4000).map(lambda n: bytes(2 * n)))


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def expected_error(kind: str, data: Any) -> bool:
    """Whether ``/ws`` must answer this message with an ``error`` event (its documented protocol)."""
    if kind == "binary":
        return len(data) % 2 == 1
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):
        return True
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return True
    if message["type"] != "text":
        return True  # unknown type ("end" is never generated)
    typed = message.get("text")
    # A blank text, or one with nothing visible once control characters go, is refused.
    return not isinstance(typed, str) or not typed.strip() or typed in ("\x00", "\u200b")


messages = st.lists(
    st.one_of(st.tuples(st.just("text"), text_messages), st.tuples(st.just("binary"), binary_messages)),
    min_size=1,
    max_size=15,
)


@settings(FUZZ, max_examples=12)
@given(batch=messages)
def test_pcm_clients_get_an_error_event_per_bad_message_and_keep_their_session(batch: list[tuple[str, Any]]) -> None:
    # Every bad message gets its event here; the rate limit past the burst is tested in test_websocket_limits.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VOCALIS_TRANSPORT_WEBSOCKET_LOG_BURST", "100")
        asyncio.run(_fuzz_pcm_session(batch))


async def _fuzz_pcm_session(batch: list[tuple[str, Any]]) -> None:
    # asyncio.timeout: a hang fails the example instead of stalling the run.
    async with asyncio.timeout(60), QuickHarness(answers=["Fine."]) as harness:
        bystander = await pcm_client(harness)
        client = await pcm_client(harness)
        await client.wait_for(lambda: bool(client.named("ready")))
        for kind, data in batch:
            await (client.ws.send_str(data) if kind == "text" else client.ws.send_bytes(data))
        # A marker: one more bad message; once its error is in, all the others are too.
        await client.ws.send_str("{marker")
        wanted = sum(expected_error(kind, data) for kind, data in batch) + 1
        await client.wait_for(lambda: len(client.named("error")) >= wanted)
        errors = client.named("error")
        assert len(errors) == wanted, [e["message"] for e in errors]
        assert all(e["recoverable"] and e["source"] in ("websocket", "audio input", "send_text") for e in errors)
        assert not client.closed.is_set()
        # Both the fuzzed session and a bystander still hold a conversation.
        for each in (client, bystander):
            await each.send_json({"type": "text", "text": "still there?"})
            await each.wait_for(lambda c=each: _answered(c, "still there?"))
        await client.aclose()
        await bystander.aclose()
    assert other_tasks() == []


def _answered(client: Any, text: str) -> bool:
    """Whether an uninterrupted agent turn came after the user turn ``text``."""
    events = client.events
    asked = [i for i, e in enumerate(events) if e.get("type") == "user_turn" and e.get("text") == text]
    return bool(asked) and any(
        e.get("type") == "agent_turn" and e["text"] == "Fine." and not e["interrupted"] for e in events[asked[-1] :]
    )


async def test_protocol_violations_close_with_clear_codes_and_others_go_on() -> None:
    async with QuickHarness(answers=["Fine."], max_message_bytes=64 * 1024) as harness:
        bystander = await pcm_client(harness)
        await bystander.wait_for(lambda: bool(bystander.named("ready")))
        bad_utf8 = await pcm_client(harness)
        await bad_utf8.wait_for(lambda: bool(bad_utf8.named("ready")))
        await bad_utf8.ws._writer.send_frame(b"\xff\xfe{", aiohttp.WSMsgType.TEXT)  # type: ignore[union-attr]
        assert await bad_utf8.wait_closed() == 1007  # invalid frame payload data
        for message in (bytes(64 * 1024 + 2), "x" * (64 * 1024 + 1)):
            oversized = await pcm_client(harness)
            await oversized.wait_for(lambda o=oversized: bool(o.named("ready")))
            await (oversized.ws.send_bytes(message) if isinstance(message, bytes) else oversized.ws.send_str(message))
            assert await oversized.wait_closed() == 1009  # message too big
        await bystander.send_json({"type": "text", "text": "hello"})
        await bystander.wait_for(lambda: _answered(bystander, "hello"))
        assert bystander.named("error") == []
        await bystander.aclose()
        await _until(lambda: len(harness.server.sessions) == 0)
        assert harness.server.opened == 4


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


# -- /twilio --------------------------------------------------------------------------------

media_payloads = st.one_of(
    st.text(max_size=20),  # mostly not base64
    st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
    st.sampled_from(["", "====", "AAA", "!!", "A" * 4]),
    json_values,
)
twilio_messages = st.one_of(
    st.tuples(st.just("text"), text_messages),
    st.tuples(st.just("binary"), binary_messages),
    st.tuples(
        st.just("text"),
        st.fixed_dictionaries(
            {
                "event": st.just("media"),
                "media": st.one_of(json_values, st.fixed_dictionaries({"payload": media_payloads})),
            }
        ).map(_dumps),
    ),
    st.tuples(
        st.just("text"),
        st.fixed_dictionaries(
            {
                "event": st.sampled_from(["mark", "dtmf", "connected", "start", "bogus"]),
                "mark": json_values,
                "dtmf": json_values,
            }
        ).map(_dumps),
    ),
)


def _not_a_start(message: tuple[str, Any]) -> bool:
    """Before ``start`` anything goes but a (bogus) ``start``: that one ends the call (tested below)."""
    kind, data = message
    if kind != "text" or not _is_json(data):
        return True
    value = json.loads(data)
    return not (isinstance(value, dict) and value.get("event") == "start")


@settings(FUZZ, max_examples=10)
@given(
    before_start=st.lists(twilio_messages.filter(_not_a_start), max_size=4),
    during=st.lists(twilio_messages, min_size=1, max_size=12),
)
def test_twilio_calls_survive_malformed_messages(
    before_start: list[tuple[str, Any]], during: list[tuple[str, Any]]
) -> None:
    async def main() -> None:
        async with asyncio.timeout(60), QuickHarness(["what time is it"], ["Noon."]) as harness:
            call = await twilio_call(harness)
            for kind, data in before_start:  # before "start": ignored while waiting for it
                await (call.ws.send_str(data) if kind == "text" else call.ws.send_bytes(data))
            await call.connected()
            await call.start({"token": TOKEN})
            await asyncio.wait_for(harness.agent_made.wait(), 10)
            session = harness.session()
            errors: list[dict[str, Any]] = []
            session.on("error", errors.append)
            for kind, data in during:
                await (call.ws.send_str(data) if kind == "text" else call.ws.send_bytes(data))
            await call.send_pcm(np.concatenate([tone_pcm(0.5, 8000), silence_pcm(0.7, 8000)]))
            await call.wait_for(lambda: len(call.marks) >= 1)
            assert harness.pipelines[-1].tts.spoken[-1] == "Noon."
            assert all(e["source"] in ("transport:twilio", "audio input") and e["recoverable"] for e in errors)
            assert call.violations == []
            await call.stop()
            assert await call.wait_closed() == 1000
        assert other_tasks() == []

    asyncio.run(main())


async def test_twilio_garbage_instead_of_start_is_refused_clearly(monkeypatch: Any) -> None:
    monkeypatch.setenv("VOCALIS_TRANSPORT_TWILIO_START_TIMEOUT", "0.3")
    async with Harness() as harness:
        call = await twilio_call(harness, query_token=TOKEN)
        await call.ws.send_str("[" * 50_000)  # once crashed the handler (abnormal close 1006)
        await call.ws.send_bytes(b"\x00\x01")
        await call.ws.send_str('{"event": "start", "start": "nonsense"}')  # no streamSid anywhere
        assert await call.wait_closed() == 1002
        assert "streamSid" in call.close_reason
        call = await twilio_call(harness, query_token=TOKEN)
        await call.ws.send_str("{not json")
        assert await call.wait_closed() == 1008
        assert "start" in call.close_reason
        assert harness.server.opened == 0
