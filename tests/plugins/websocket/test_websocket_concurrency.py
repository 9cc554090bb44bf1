"""Many connections in one process: each gets its own session and its own answer."""

from __future__ import annotations

import asyncio

import numpy as np
from ws_harness import (
    TOKEN,
    Harness,
    fake_tts_seconds,
    other_tasks,
    pcm_client,
    silence_pcm,
    tone_pcm,
    twilio_call,
)

SESSIONS = 20


async def test_twenty_clients_each_get_their_own_answer() -> None:
    async with Harness(max_sessions=SESSIONS) as harness:
        clients = await asyncio.gather(*(pcm_client(harness) for _ in range(SESSIONS)))
        questions = [f"caller {i}" + " la" * (i % 4) for i in range(SESSIONS)]

        async def converse(client, question: str) -> None:
            await client.wait_for(lambda: bool(client.named("ready")))
            await client.send_json({"type": "text", "text": question})
            await client.wait_for(lambda: bool(client.named("agent_turn")), timeout=15)

        await asyncio.gather(*(converse(c, q) for c, q in zip(clients, questions, strict=True)))
        assert len(harness.server.sessions) == SESSIONS
        session_ids = {c.named("ready")[0]["session_id"] for c in clients}
        assert len(session_ids) == SESSIONS

        by_session = {a.session.id: p for a, p in zip(harness.agents, harness.pipelines, strict=True)}
        for client, question in zip(clients, questions, strict=True):
            assert [e["text"] for e in client.named("user_turn")] == [question]
            assert [e["text"] for e in client.named("agent_turn")] == [f"You said {question}."]
            # The audio it got is its own answer's: as long as its own TTS made.
            tts = by_session[client.named("ready")[0]["session_id"]].tts
            assert " ".join(tts.spoken) == f"You said {question}."
            assert abs(len(client.pcm()) / 16000 - fake_tts_seconds(tts)) < 0.03
            assert client.named("error") == []

        for client in clients:
            await client.send_json({"type": "end"})
        codes = await asyncio.gather(*(c.wait_closed() for c in clients))
        assert codes == [1000] * SESSIONS
        assert harness.server.sessions == {} and harness.server.opened == SESSIONS
    assert other_tasks() == []


class CallerHarness(Harness):
    """Answers each call with the caller's name from its TwiML <Parameter>s."""

    def make_pipeline(self):
        pipeline = super().make_pipeline()

        def answer(ctx, tools) -> str:
            caller = pipeline.session.transport.custom_parameters["caller"]
            return f"Hello {caller}, you asked about {ctx.last_message('user').content}."

        pipeline.llm.responses = [answer]
        return pipeline


async def test_concurrent_phone_calls_do_not_mix() -> None:
    names = ["Ann", "Bartholomew", "Cy", "Dorothea Margaret", "Ed"]
    async with CallerHarness(["the weather"], max_sessions=len(names)) as harness:
        phones = await asyncio.gather(*(twilio_call(harness) for _ in names))
        for phone, name in zip(phones, names, strict=True):
            await phone.connected()
            await phone.start({"token": TOKEN, "caller": name})

        async def speak(phone) -> None:
            await phone.send_pcm(np.concatenate([tone_pcm(0.4, 8000), silence_pcm(0.6, 8000)]))
            await phone.wait_for(lambda: len(phone.marks) == 1)

        await asyncio.gather(*(speak(p) for p in phones))
        assert len(harness.server.sessions) == len(names)
        spoken = {p.session.transport.custom_parameters["caller"]: fake_tts_seconds(p.tts) for p in harness.pipelines}
        said = {p.session.transport.custom_parameters["caller"]: " ".join(p.tts.spoken) for p in harness.pipelines}
        for phone, name in zip(phones, names, strict=True):
            assert phone.violations == []
            assert said[name] == f"Hello {name}, you asked about the weather."
            # The audio on this call is as long as this caller's answer, not another's.
            assert abs(len(phone.pcm()) / 8000 - spoken[name]) < 0.03, name
        for phone in phones:
            await phone.stop()
        assert await asyncio.gather(*(p.wait_closed() for p in phones)) == [1000] * len(names)
        assert harness.server.sessions == {}
    assert other_tasks() == []
