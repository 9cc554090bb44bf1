"""`vocalis report`: the per-turn table, transcripts, long replies, legend order and layout."""

from __future__ import annotations

import html as html_lib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from vocalis import Agent
from vocalis.cli.main import cli
from vocalis.observability.metrics_file import MetricsFileWriter, read_metrics
from vocalis.observability.report import SEGMENTS, render_html, turn_rows
from vocalis.observability.report_turns import NO_TEXT_NOTE, turn_detail
from vocalis.testing import Conversation, FakeLLM, FakeResponse, FakeSTT, FakeTTS, run_virtual

plotly = pytest.importorskip("plotly")


def session_metrics(path: Path, *, record_text: bool) -> Path:
    """A real two-turn session's metrics file."""
    from session_helpers import pipeline

    async def main() -> None:
        writer = MetricsFileWriter(path)
        llm = FakeLLM([FakeResponse("Tea is ready.", ttft=0.3), FakeResponse("Coffee too.", ttft=0.2)])
        conv = Conversation(
            Agent("Shop assistant."),
            pipeline(stt=FakeSTT(["do you have tea", "and coffee"], final_delay=0.1), llm=llm, tts=FakeTTS()),
            record_text=record_text,
        )
        writer.attach(conv.session)
        async with conv:
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
            await conv.user_speaks(1.0)
            await conv.wait_for_agent_turn()
        writer.close()

    run_virtual(main())
    return path


def embedded_turns(page: str) -> list[dict[str, Any]]:
    match = re.search(r"<script type='application/json' id='vocalis-turns'>(.*?)</script>", page, re.S)
    assert match, "the page embeds its turn rows as JSON"
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def test_transcripts_llm_work_and_reply_audio_are_shown(tmp_path: Path) -> None:
    path = session_metrics(tmp_path / "m.jsonl", record_text=True)
    page = render_html(path, tmp_path / "r.html").read_text()
    turns = embedded_turns(page)
    records = [r for r in read_metrics(path) if r["type"] == "turn"]
    assert [t["user_text"] for t in turns] == ["do you have tea", "and coffee"]
    assert [t["agent_text"] for t in turns] == ["Tea is ready.", "Coffee too."]
    for turn, record in zip(turns, records, strict=True):
        assert turn["llm_requests"] == len(record["llm"]) >= 1
        assert turn["llm_seconds"] == pytest.approx(sum(r["duration"] for r in record["llm"]))
        assert turn["completion_tokens"] == sum(r["completion_tokens"] for r in record["llm"]) > 0
        assert turn["reply_seconds"] == pytest.approx(record["tts"]["audio_duration"]) and turn["reply_seconds"] > 0
        assert not turn["long_reply"]
    assert "<b>user:</b> do you have tea" in page and "<b>agent:</b> Tea is ready." in page
    for header in ("LLM total", "tokens in / out", "reply audio"):
        assert f"<th>{header}</th>" in page
    assert html_lib.escape(NO_TEXT_NOTE) not in page


def test_without_recorded_text_the_page_says_how_to_record_it(tmp_path: Path) -> None:
    path = session_metrics(tmp_path / "m.jsonl", record_text=False)
    page = render_html(path, tmp_path / "r.html").read_text()
    assert all(t["user_text"] is None for t in embedded_turns(page))
    assert "record_text=True" in page and "class='text'" not in page


def rambling_record(audio: float) -> dict[str, Any]:
    return {
        "type": "turn",
        "session_id": "s",
        "turn": 1,
        "source": "user_turn",
        "user_speech_ended_at": 1.0,
        "first_audio_at": 1.8,
        "e2e_latency": 0.8,
        "user_text": "tell me about </script><b>tea",
        "agent_text": None,
        "llm": [
            {"duration": 30.0, "prompt_tokens": 120, "completion_tokens": 700},
            {"duration": 2.5, "prompt_tokens": 900, "completion_tokens": 20},
        ],
        "tts": {"started_at": 1.5, "ttfb": 0.2, "characters": 3000, "audio_duration": audio},
    }


def test_a_long_reply_is_marked_in_words_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(rambling_record(48.0)) + "\n")
    page = render_html(path, tmp_path / "r.html").read_text()
    (turn,) = embedded_turns(page)
    assert turn["long_reply"] and turn["reply_seconds"] == 48.0
    assert (turn["llm_seconds"], turn["prompt_tokens"], turn["completion_tokens"]) == (32.5, 1020, 720)
    assert "48.0 s ⚠ long reply" in page and "1 reply longer than 15 s" in page
    assert "32500 ms" in page and "1020 / 720" in page
    # Text from the metrics cannot break out of the page.
    assert "<b>tea" not in page and "&lt;/script&gt;&lt;b&gt;tea" in page
    assert turn["user_text"] == "tell me about </script><b>tea"


def test_the_threshold_is_an_option(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps(rambling_record(12.0)) + "\n")
    assert not turn_detail("turn 1", rambling_record(12.0)).long_reply
    result = CliRunner().invoke(cli, ["report", "--no-png", "--long-reply", "10", str(path)])
    assert result.exit_code == 0, result.output
    page = path.with_suffix(".html").read_text()
    assert embedded_turns(page)[0]["long_reply"] and "12.0 s ⚠ long reply" in page


def test_plotly_legend_follows_the_bars_and_clears_the_axis_title(tmp_path: Path) -> None:
    from vocalis.observability.report import _figure

    path = session_metrics(tmp_path / "m.jsonl", record_text=False)
    figure = _figure(turn_rows(read_metrics(path)))
    layout = figure.layout
    assert [trace.name for trace in figure.data] == [name for _, name, _ in SEGMENTS]
    assert layout.legend.traceorder == "normal"  # plotly reverses stacked bars' legends otherwise
    # The legend sits on top of the plot area, the axis title below it; the
    # title is pinned to the top of the page, inside a fixed top margin.
    assert layout.legend.y >= 1.0 and layout.legend.yanchor == "bottom"
    assert layout.title.yref == "container" and layout.title.y == 1.0 and layout.margin.t >= 120


def test_png_legend_reads_in_bar_order_and_overlaps_nothing(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from vocalis.observability.report import png_figure

    path = session_metrics(tmp_path / "m.jsonl", record_text=False)
    fig = png_figure(turn_rows(read_metrics(path)))
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        (legend,) = fig.legends
        texts = sorted(legend.get_texts(), key=lambda t: (-t.get_window_extent(renderer).y0, t.get_window_extent().x0))
        assert [t.get_text() for t in texts] == [name for _, name, _ in SEGMENTS]
        box = legend.get_window_extent(renderer)
        ax = fig.axes[0]
        for other in (ax.get_window_extent(renderer), ax.xaxis.label.get_window_extent(renderer)):
            assert not box.overlaps(other)
    finally:
        plt.close(fig)
