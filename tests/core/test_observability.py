"""Metrics, JSONL files, OpenTelemetry spans, the waterfall report, job shutdown."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from loguru import logger
from session_helpers import pipeline

from vocalis import Agent, EOUConfig, function_tool
from vocalis.observability.metrics_file import MetricsFileWriter, read_metrics
from vocalis.observability.report import render_html, render_png, turn_rows
from vocalis.testing import Conversation, FakeEOU, FakeLLM, FakeResponse, FakeSTT, FakeTTS, run_virtual


@function_tool
async def check_stock(item: str) -> str:
    """Check the stock of an item."""
    await asyncio.sleep(0.7)
    return f"{item}: 3 left"


def scripted(record_text: bool = False) -> Conversation:
    """Known latencies: VAD hang-over 0.3 s, STT final 0.1 s after flush,
    end-of-turn wait 0.5 s after the last word, LLM TTFT 0.3 s, TTS TTFB 0.05 s."""
    llm = FakeLLM(
        [
            FakeResponse("Let me check.", ttft=0.3),
            FakeResponse(tool_calls=[("check_stock", '{"item": "tea"}')], ttft=0.2),
            FakeResponse("There are three left.", ttft=0.2),
        ]
    )
    p = pipeline(
        stt=FakeSTT(["do you have tea", "and coffee"], final_delay=0.1),
        llm=llm,
        tts=FakeTTS(ttfb=0.05),
        eou=FakeEOU(1.0),
        eou_config=EOUConfig(min_delay=0.5, max_delay=1.0),
    )
    return Conversation(Agent("Shop assistant.", tools=[check_stock]), p, record_text=record_text)


def test_turn_metrics_match_the_scripted_latencies_exactly() -> None:
    async def main() -> Conversation:
        async with scripted() as conv:
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
        return conv

    conv = run_virtual(main())
    (m,) = conv.session.metrics
    assert m.source == "user_turn" and m.turn == 1
    assert m.stt_latency == pytest.approx(0.4, abs=1e-6)  # 0.3 hang-over + 0.1
    assert m.eou_delay == pytest.approx(0.5, abs=1e-6)  # the wait counts from the last word
    assert m.eou_probability == 1.0
    assert m.llm_ttft == pytest.approx(0.3, abs=1e-6)
    assert m.tts_ttfb == pytest.approx(0.05, abs=1e-6)
    assert m.e2e_latency == pytest.approx(0.5 + 0.3 + 0.05, abs=1e-6)
    assert m.vad_end_at - m.user_speech_ended_at == pytest.approx(0.3, abs=1e-6)
    assert m.stt == {"provider": "stt:fake", "model": None}
    assert m.llm[0].provider == "llm:fake" and m.llm[0].completion_tokens >= 3
    assert m.tts.characters == len("Let me check.") and m.tts.audio_duration > 0
    assert m.user_text is None and m.agent_text is None  # text only on opt-in
    assert conv.named("metrics_collected")[0]["metrics"] is m


def test_tool_durations_llm_rounds_and_summary() -> None:
    async def main() -> Conversation:
        async with scripted(record_text=True) as conv:
            await conv.session.reply("greet")  # "Let me check."
            await conv.session.reply("check")  # tool round, then the answer
        return conv

    conv = run_virtual(main())
    first, second = conv.session.metrics
    assert first.source == "reply" and first.e2e_latency is None
    assert [round(t.duration, 6) for t in second.tools] == [0.7]
    assert second.tools[0].name == "check_stock" and not second.tools[0].is_error
    assert len(second.llm) == 2
    assert second.agent_text == "There are three left."
    summary = conv.named("close")[0]["summary"]
    assert summary.turns == 2 and summary.tool_calls == 1 and summary.errors == 0
    assert summary.session_id == conv.session.id


def test_interruption_counts_in_the_summary() -> None:
    long = "A long answer that goes on and on so that the user can talk over it several times."

    async def main() -> Conversation:
        p = pipeline(stt=FakeSTT(["yeah", "", "stop now please"]), llm=FakeLLM(["Sure."]))
        async with Conversation(Agent("x"), p) as conv:
            handle = await conv.session.say(long)
            await conv.silence(0.5)
            await conv.user_speaks(0.3)  # backchannel
            await conv.silence(0.6)
            await conv.user_speaks(0.7)  # cough: paused, then resumed
            await conv.silence(1.6)
            await conv.user_speaks(1.0)  # real interruption
            await conv.wait_for_speech(handle)
            await conv.wait_for_agent_turn(2)
        return conv

    summary = run_virtual(main()).named("close")[0]["summary"]
    assert (summary.backchannels, summary.false_interruptions, summary.interruptions) == (1, 1, 1)


def test_latency_line_in_the_log() -> None:
    sink = io.StringIO()
    handler = logger.add(sink, level="INFO", format="{message}")

    async def main() -> None:
        async with scripted() as conv:
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()

    try:
        run_virtual(main())
    finally:
        logger.remove(handler)
    text = sink.getvalue()
    assert "turn 1: stt 400ms | eou 500ms | llm ttft 300ms | tts ttfb 50ms | e2e 850ms" in text
    assert "session summary: 1 turns" in text


def test_metrics_jsonl_file(tmp_path: Path) -> None:
    path = tmp_path / "run" / "metrics.jsonl"

    async def main() -> None:
        writer = MetricsFileWriter(path)
        conv = scripted()
        writer.attach(conv.session)
        async with conv:
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
        writer.close()
        writer.close()

    run_virtual(main())
    records = read_metrics(path)
    assert [r["type"] for r in records] == ["session", "turn", "summary"]
    assert records[0]["providers"]["llm"] == {"provider": "llm:fake", "model": None}
    assert records[1]["e2e_latency"] == pytest.approx(0.85, abs=1e-6)
    assert records[1]["llm_ttft"] == pytest.approx(0.3, abs=1e-6)
    assert records[2]["turns"] == 1
    with path.open("a") as f:
        f.write("not json\n\n")
    assert len(read_metrics(path)) == 3


def _spans(record_text: bool):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def main() -> None:
        conv = scripted(record_text=record_text)
        async with conv:
            conv.session.trace(provider)
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
            await conv.session.reply("check")

    run_virtual(main())
    return exporter.get_finished_spans()


def test_opentelemetry_span_tree_and_attributes() -> None:
    pytest.importorskip("opentelemetry.sdk")
    spans = _spans(record_text=False)
    by_id = {s.context.span_id: s for s in spans}
    names = sorted(s.name for s in spans)
    assert names.count("vocalis.session") == 1
    assert names.count("vocalis.agent_turn") == 2 and names.count("vocalis.user_turn") == 1
    assert names.count("vocalis.llm") == 3 and names.count("vocalis.tool") == 1
    parent = {s.name: by_id[s.parent.span_id].name for s in spans if s.parent is not None}
    assert parent == {
        "vocalis.user_turn": "vocalis.session",
        "vocalis.agent_turn": "vocalis.session",
        "vocalis.stt": "vocalis.user_turn",
        "vocalis.eou": "vocalis.user_turn",
        "vocalis.llm": "vocalis.agent_turn",
        "vocalis.tool": "vocalis.agent_turn",
        "vocalis.tts": "vocalis.agent_turn",
    }
    llm = next(s for s in spans if s.name == "vocalis.llm")
    assert llm.attributes["vocalis.llm.ttft"] == pytest.approx(0.3, abs=1e-6)
    assert llm.attributes["vocalis.provider"] == "llm:fake"
    eou = next(s for s in spans if s.name == "vocalis.eou")
    assert (eou.end_time - eou.start_time) / 1e9 == pytest.approx(0.5, abs=1e-3)
    tool = next(s for s in spans if s.name == "vocalis.tool")
    assert (tool.end_time - tool.start_time) / 1e9 == pytest.approx(0.7, abs=1e-3)
    session = next(s for s in spans if s.name == "vocalis.session")
    assert session.attributes["vocalis.summary.turns"] == 2
    assert not any("text" in key for s in spans for key in (s.attributes or {}))


def test_span_text_only_with_opt_in() -> None:
    pytest.importorskip("opentelemetry.sdk")
    spans = _spans(record_text=True)
    user = next(s for s in spans if s.name == "vocalis.user_turn")
    assert user.attributes["vocalis.user_text"] == "do you have tea"


def test_every_span_lies_within_its_parent() -> None:
    """A say(), a user turn answered by a preemptive request, a reply with a tool
    call and an interrupted reply: no span starts before or ends after its parent."""
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    long = "This answer goes on and on for a good while, so there is time to cut in. " * 2

    async def main() -> None:
        llm = FakeLLM(
            [
                FakeResponse("Let me check.", ttft=0.3),
                FakeResponse(tool_calls=[("check_stock", '{"item": "tea"}')], ttft=0.2),
                FakeResponse("There are three left.", ttft=0.2),
                FakeResponse(long, ttft=0.2),
                FakeResponse("Coffee too.", ttft=0.2),
            ]
        )
        p = pipeline(
            stt=FakeSTT(["do you have tea", "and coffee"], final_delay=0.1),
            llm=llm,
            tts=FakeTTS(ttfb=0.05),
            eou=FakeEOU(1.0),
            eou_config=EOUConfig(min_delay=0.5, max_delay=1.0, preemptive_generation=True),
        )
        async with Conversation(Agent("Shop assistant.", tools=[check_stock]), p) as conv:
            conv.session.trace(provider)
            await conv.session.say("Welcome to the shop. Ask me anything.", wait_for_playback=True)
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
            await conv.session.reply("check")
            handle = await conv.session.reply("tell more", wait_for_playback=False)
            await conv.silence(1.5)
            await conv.user_speaks(1.2)  # cuts the long answer off
            await conv.wait_for_agent_turn(5)
            assert handle.interrupted

    run_virtual(main())
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    names = [s.name for s in spans]
    assert names.count("vocalis.agent_turn") == 5 and names.count("vocalis.user_turn") == 2
    assert {"vocalis.tool", "vocalis.llm", "vocalis.tts", "vocalis.stt", "vocalis.eou"} <= set(names)
    agent_turns = [s for s in spans if s.name == "vocalis.agent_turn"]
    assert [t.attributes["vocalis.source"] for t in agent_turns][0] == "say"
    assert any(t.attributes["vocalis.interrupted"] for t in agent_turns)
    assert any(s.attributes.get("vocalis.llm.preemptive") for s in spans if s.name == "vocalis.llm")
    for span in spans:
        assert span.start_time <= span.end_time, span.name
        if span.parent is None:
            assert span.name == "vocalis.session"
            continue
        parent = by_id[span.parent.span_id]
        assert parent.start_time <= span.start_time, (span.name, "starts before", parent.name)
        assert span.end_time <= parent.end_time, (span.name, "ends after", parent.name)


def test_report_renders_every_turn(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    path = tmp_path / "m.jsonl"

    async def main() -> None:
        writer = MetricsFileWriter(path)
        conv = scripted()
        writer.attach(conv.session)
        async with conv:
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
            await conv.session.say("Anything else?", wait_for_playback=True)
        writer.close()

    run_virtual(main())
    rows = turn_rows(read_metrics(path))
    assert [r.label for r in rows] == ["turn 1", "turn 2", "turn 3"]
    assert sum(rows[0].segments.values()) == pytest.approx(rows[0].record["e2e_latency"], abs=1e-6)
    html = render_html(path, tmp_path / "r.html").read_text()
    assert all(f"data-turn='{n}'" in html for n in (1, 2, 3))
    assert "plotly" in html.lower() and "LLM first token" in html
    png = render_png(path, tmp_path / "r.png")
    if png is not None:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_cli(tmp_path: Path) -> None:
    pytest.importorskip("plotly")
    from click.testing import CliRunner

    from vocalis.cli.main import cli

    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"type": "session", "session_id": "s"}\n')
    result = CliRunner().invoke(cli, ["report", str(empty)])
    assert result.exit_code == 1 and "holds no turn records" in result.output


APP = """
import asyncio
from pathlib import Path

from vocalis import Agent, AgentSession, CascadingPipeline
from vocalis.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, FakeTransport, tone


async def entrypoint(ctx):
    pipeline = CascadingPipeline(stt=FakeSTT(["hello"] * 50, final_delay=0.05), llm=FakeLLM(["Hi there."]),
                                 tts=FakeTTS(), vad=FakeVAD())
    transport = FakeTransport()
    session = AgentSession(Agent("x"), pipeline)
    ctx.add_shutdown_callback(lambda: Path("callback-ran").write_text("yes"))
    await ctx.start_session(session, transport)
    speech, silence = tone(0.02), tone(0.02, amplitude=0.0)
    print("ready", flush=True)
    while True:  # a caller who keeps talking until the process is told to stop
        for _ in range(30):
            transport.push(speech)
            await asyncio.sleep(0.02)
        for _ in range(60):
            transport.push(silence)
            await asyncio.sleep(0.02)
"""


@pytest.mark.slow
def test_sigterm_closes_sessions_and_writes_the_summary(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "vocalis.cli.main", "run", "app:entrypoint", "--metrics", "m.jsonl"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # let at least one turn complete
            path = tmp_path / "m.jsonl"
            if path.exists() and '"type": "turn"' in path.read_text():
                break
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    records = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    types = [r["type"] for r in records]
    assert types[0] == "session" and "turn" in types and types[-1] == "summary"
    assert (tmp_path / "callback-ran").read_text() == "yes"
    assert "stopped: SIGTERM" in stderr
