"""The report's per-turn table: latencies, LLM work, reply length, transcripts.

A turn's latency can look fine while its reply rambles on for most of a
minute; the table puts the LLM's total time and tokens and the reply's audio
length next to the latencies, and marks long replies in words, not colour
alone. Transcripts appear when the session recorded them
(``AgentSession(..., record_text=True)``); the metrics hold no text otherwise.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass
from typing import Any

LONG_REPLY_SECONDS = 15.0
"""Replies with more audio than this are marked as long."""

NO_TEXT_NOTE = (
    "No transcripts: this session did not record text. "
    "Create the session with AgentSession(..., record_text=True) to keep what was said in the metrics."
)


@dataclass(frozen=True)
class TurnDetail:
    """One row of the per-turn table (seconds, or None where not measured).

    Attributes:
        label: The turn's label, as on the chart.
        turn: The turn's number in its session.
        source: ``user_turn``, ``reply`` or ``say``.
        stt_latency: End of speech → final transcript.
        eou_delay: End of speech → turn committed.
        llm_ttft: The first LLM request's time to first token.
        llm_seconds: Total time of the turn's LLM requests.
        llm_requests: LLM requests made (tool calls add rounds).
        prompt_tokens: Tokens sent to the LLM.
        completion_tokens: Tokens the LLM generated.
        tts_ttfb: The TTS's time to first byte.
        e2e_latency: End of user speech → first agent audio.
        reply_seconds: Seconds of reply audio synthesised.
        tools: Tool calls made.
        interrupted: Whether the user cut the reply off.
        long_reply: Whether the reply is longer than the threshold.
        user_text: What the user said, if recorded.
        agent_text: What the user heard, if recorded.
    """

    label: str
    turn: int | None
    source: str | None
    stt_latency: float | None
    eou_delay: float | None
    llm_ttft: float | None
    llm_seconds: float | None
    llm_requests: int
    prompt_tokens: int
    completion_tokens: int
    tts_ttfb: float | None
    e2e_latency: float | None
    reply_seconds: float | None
    tools: int
    interrupted: bool
    long_reply: bool
    user_text: str | None
    agent_text: str | None


def turn_detail(label: str, record: dict[str, Any], long_reply: float = LONG_REPLY_SECONDS) -> TurnDetail:
    """The table row of one ``turn`` record from a metrics file."""
    llm = record.get("llm") or []
    durations = [float(request["duration"]) for request in llm if request.get("duration") is not None]
    tts = record.get("tts") or {}
    reply = tts.get("audio_duration")
    reply_seconds = float(reply) if reply is not None and tts else None
    return TurnDetail(
        label=label,
        turn=record.get("turn"),
        source=record.get("source"),
        stt_latency=record.get("stt_latency"),
        eou_delay=record.get("eou_delay"),
        llm_ttft=record.get("llm_ttft"),
        llm_seconds=sum(durations) if durations else None,
        llm_requests=len(llm),
        prompt_tokens=sum(int(request.get("prompt_tokens") or 0) for request in llm),
        completion_tokens=sum(int(request.get("completion_tokens") or 0) for request in llm),
        tts_ttfb=record.get("tts_ttfb"),
        e2e_latency=record.get("e2e_latency"),
        reply_seconds=reply_seconds,
        tools=len(record.get("tools") or []),
        interrupted=bool(record.get("interrupted")),
        long_reply=reply_seconds is not None and reply_seconds > long_reply,
        user_text=record.get("user_text"),
        agent_text=record.get("agent_text"),
    )


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.0f} ms"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


HEADERS = (
    "turn",
    "source",
    "STT",
    "end of turn",
    "LLM TTFT",
    "LLM total",
    "LLM calls",
    "tokens in / out",
    "TTS TTFB",
    "end to end",
    "reply audio",
    "tools",
    "interrupted",
)


def _row(detail: TurnDetail) -> str:
    reply = _seconds(detail.reply_seconds)
    if detail.long_reply:
        reply = f"<strong>{reply} ⚠ long reply</strong>"
    cells = [
        html.escape(detail.label),
        html.escape(str(detail.source)),
        _ms(detail.stt_latency),
        _ms(detail.eou_delay),
        _ms(detail.llm_ttft),
        _ms(detail.llm_seconds),
        str(detail.llm_requests),
        f"{detail.prompt_tokens} / {detail.completion_tokens}",
        _ms(detail.tts_ttfb),
        _ms(detail.e2e_latency),
        reply,
        str(detail.tools),
        "yes" if detail.interrupted else "",
    ]
    css = " class='long'" if detail.long_reply else ""
    row = f"<tr data-turn='{html.escape(str(detail.turn))}'{css}>{''.join(f'<td>{c}</td>' for c in cells)}</tr>"
    if detail.user_text is None and detail.agent_text is None:
        return row
    said = [
        f"<b>{who}:</b> {html.escape(text)}"
        for who, text in (("user", detail.user_text), ("agent", detail.agent_text))
        if text
    ]
    return f"{row}<tr class='text'><td colspan='{len(HEADERS)}'>{'<br>'.join(said)}</td></tr>"


def turns_html(details: list[TurnDetail], long_reply: float = LONG_REPLY_SECONDS) -> str:
    """The per-turn table, its notes, and the rows as JSON for other tools."""
    head = "".join(f"<th>{h}</th>" for h in HEADERS)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(_row(d) for d in details)}</tbody></table>"
    notes = []
    long_count = sum(d.long_reply for d in details)
    if long_count:
        replies = "reply" if long_count == 1 else "replies"
        notes.append(f"{long_count} {replies} longer than {long_reply:g} s of audio (marked ⚠ long reply).")
    if all(d.user_text is None and d.agent_text is None for d in details):
        notes.append(NO_TEXT_NOTE)
    notes_html = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes)
    # With "<" escaped, no text from the metrics can end the script element.
    data = json.dumps([asdict(d) for d in details], ensure_ascii=False).replace("<", "\\u003c")
    script = f"<script type='application/json' id='vocalis-turns'>{data}</script>"
    return f"<h2>Turns</h2>{notes_html}{table}{script}"
