"""``vocalis report``: a latency waterfall from a metrics JSONL file.

The HTML page is drawn with plotly (``pip install "vocalis[report]"``), its
JavaScript inlined so the page works offline; a PNG is drawn with matplotlib
when it is installed.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vocalis.observability.metrics_file import read_metrics
from vocalis.observability.report_turns import LONG_REPLY_SECONDS, turn_detail, turns_html

SEGMENTS = (
    ("stt", "end of speech → STT final", "#4C78A8"),
    ("eou", "STT final → end-of-turn decision", "#F58518"),
    ("llm", "decision → LLM first token", "#54A24B"),
    ("tools", "tool calls (and the LLM rounds between)", "#EECA3B"),
    ("tts", "→ TTS first byte", "#B279A2"),
    ("out", "TTS first byte → audio out", "#E45756"),
)


@dataclass
class TurnRow:
    """One turn's waterfall: segment lengths in seconds from the end of speech."""

    label: str
    segments: dict[str, float]
    record: dict[str, Any]

    @property
    def total(self) -> float:
        return sum(self.segments.values())


def _tools_done(record: dict[str, Any]) -> float | None:
    tools = record.get("tools") or []
    ends = [t["started_at"] + t["duration"] for t in tools if t.get("started_at") is not None]
    return max(ends) if ends else None


def _segments(record: dict[str, Any]) -> dict[str, float]:
    """Cut the turn's timeline into consecutive segments (missing points are skipped)."""
    tts = record.get("tts") or {}
    tts_first_byte = None
    if tts.get("started_at") is not None and tts.get("ttfb") is not None:
        tts_first_byte = tts["started_at"] + tts["ttfb"]
    points = [
        ("start", record.get("user_speech_ended_at")),
        ("stt", record.get("stt_final_at")),
        ("eou", record.get("eou_decided_at")),
        ("llm", record.get("first_token_at")),
        ("tools", _tools_done(record)),
        ("tts", tts_first_byte),
        ("out", record.get("first_audio_at")),
    ]
    segments: dict[str, float] = {}
    previous = points[0][1]
    if previous is None:
        # A say()/reply() turn has no user speech: start at the first known point.
        previous = next((t for _, t in points[1:] if t is not None), None)
    if previous is None:
        return segments
    for name, moment in points[1:]:
        if moment is None:
            continue
        segments[name] = max(0.0, moment - previous)
        previous = max(previous, moment)
    return segments


def turn_rows(records: list[dict[str, Any]]) -> list[TurnRow]:
    """The waterfall rows of every turn record, in file order."""
    sessions = {r.get("session_id") for r in records if r["type"] == "turn"}
    rows = []
    for record in records:
        if record["type"] != "turn":
            continue
        prefix = f"{record.get('session_id')} " if len(sessions) > 1 else ""
        rows.append(TurnRow(f"{prefix}turn {record.get('turn')}", _segments(record), record))
    return rows


def _ms(value: Any) -> str:
    return "–" if value is None else f"{float(value) * 1000:.0f} ms"


def _figure(rows: list[TurnRow]) -> Any:
    import plotly.graph_objects as go

    labels = [row.label for row in rows]
    figure = go.Figure()
    for key, name, color in SEGMENTS:
        figure.add_trace(
            go.Bar(
                y=labels,
                x=[row.segments.get(key, 0.0) * 1000 for row in rows],
                name=name,
                orientation="h",
                marker_color=color,
                hovertemplate="%{y}: %{x:.0f} ms<extra>" + name + "</extra>",
            )
        )
    # The legend sits between the title and the bars, in bar order ("normal":
    # plotly reverses stacked bars' legends by default), and the margins are
    # fixed in pixels, so neither the title nor the axis title can overlap it
    # whatever the number of turns.
    figure.update_layout(
        barmode="stack",
        title={
            "text": "Where each turn's time went (from the end of the user's speech)",
            "y": 1.0,
            "yref": "container",
            "yanchor": "top",
            "pad": {"t": 16},
        },
        xaxis_title="milliseconds",
        yaxis={"autorange": "reversed"},
        height=40 * len(rows) + 320,
        margin={"t": 150, "b": 60},
        legend={
            "orientation": "h",
            "traceorder": "normal",
            "x": 0.0,
            "xanchor": "left",
            "y": 1.0,
            "yanchor": "bottom",
        },
        template="plotly_white",
    )
    return figure


def render_html(path: str | Path, out: str | Path, long_reply: float = LONG_REPLY_SECONDS) -> Path:
    """Write the HTML report for a metrics file.

    Args:
        path: The metrics JSONL file.
        out: The HTML file to write.
        long_reply: Replies with more audio than this many seconds are marked.

    Raises:
        ImportError: plotly is missing (``pip install "vocalis[report]"``).
        ValueError: The file holds no turn.
    """
    records = read_metrics(path)
    rows = turn_rows(records)
    if not rows:
        raise ValueError(f"{path} holds no turn records")
    try:
        figure = _figure(rows)
    except ImportError:
        raise ImportError('the report needs plotly: pip install "vocalis[report]"') from None
    chart = figure.to_html(full_html=False, include_plotlyjs=True)
    table = turns_html([turn_detail(row.label, row.record, long_reply) for row in rows], long_reply)
    summaries = [r for r in records if r["type"] == "summary"]
    summary_html = "".join(
        "<p class='summary'>{}: {} turns, end-to-end p50 {}, p90 {}, {} interruptions, {} errors</p>".format(
            html.escape(str(s.get("session_id"))),
            s.get("turns"),
            _ms(s.get("e2e_p50")),
            _ms(s.get("e2e_p90")),
            s.get("interruptions"),
            s.get("errors"),
        )
        for s in summaries
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Vocalis latency report</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "tr.text td{text-align:left;color:#333}tr.long td{background:#fff3cd}</style></head><body>"
        f"<h1>Latency report</h1><p>{html.escape(str(path))}</p>{summary_html}{chart}{table}</body></html>"
    )
    out = Path(out)
    out.write_text(page, encoding="utf-8")
    return out


def png_figure(rows: list[TurnRow]) -> Any:
    """The matplotlib waterfall of ``rows`` (a Figure; needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Constrained layout places the legend outside the axes ("outside …"), so
    # it can overlap neither the bars nor the axis title.
    fig, ax = plt.subplots(figsize=(10, max(3.5, 0.45 * len(rows) + 2.8)), layout="constrained")
    lefts = [0.0] * len(rows)
    for key, name, color in SEGMENTS:
        widths = [row.segments.get(key, 0.0) * 1000 for row in rows]
        ax.barh([row.label for row in rows], widths, left=lefts, color=color, label=name)
        lefts = [a + b for a, b in zip(lefts, widths, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds from the end of the user's speech")
    handles, labels = ax.get_legend_handles_labels()
    columns = 3
    # matplotlib fills legend columns top to bottom; this order makes each row
    # read left to right in bar order.
    order = [i + columns * r for i in range(columns) for r in range(-(-len(handles) // columns))]
    order = [i for i in order if i < len(handles)]
    fig.legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        loc="outside upper center",
        ncol=columns,
        fontsize=8,
    )
    return fig


def render_png(path: str | Path, out: str | Path) -> Path | None:
    """Write a PNG waterfall with matplotlib; None when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    rows = turn_rows(read_metrics(path))
    if not rows:
        raise ValueError(f"{path} holds no turn records")
    fig = png_figure(rows)
    out = Path(out)
    fig.savefig(out, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return out
