"""Per-turn metrics: where each turn's time went.

A :class:`TurnMetrics` is filled as a turn runs (end of speech → final
transcript → end-of-turn decision → LLM first token → TTS first byte → first
audio out) and emitted as ``metrics_collected`` when the agent's reply ends.
All times are seconds on the event loop's clock, relative to the session's
start, so they are exact under the virtual clock in tests.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class LLMMetrics:
    """One LLM request (a reply may make several when tools are called).

    Attributes:
        provider: Provider label, e.g. ``"llm:openai"``.
        model: Model name, if the provider reports one.
        started_at: Request time.
        ttft: Seconds to the first chunk (text or tool call).
        duration: Seconds until the stream ended.
        prompt_tokens: Tokens in, when reported.
        completion_tokens: Tokens out, when reported (else chunks counted).
        tokens_per_second: Completion tokens over the generation time.
        preemptive: Whether it was started before the turn was committed.
    """

    provider: str
    model: str | None
    started_at: float
    ttft: float | None = None
    duration: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_per_second: float | None = None
    preemptive: bool = False


@dataclass(slots=True)
class ToolMetrics:
    """One tool call."""

    name: str
    call_id: str
    started_at: float
    duration: float
    is_error: bool


@dataclass(slots=True)
class TTSMetrics:
    """Synthesis of one reply.

    Attributes:
        provider: Provider label.
        model: Voice or model name, if known.
        started_at: When the first text reached the TTS.
        ttfb: Seconds from the first text to the first audio.
        characters: Characters sent to the TTS.
        audio_duration: Seconds of audio produced.
    """

    provider: str
    model: str | None
    started_at: float | None = None
    ttfb: float | None = None
    characters: int = 0
    audio_duration: float = 0.0


@dataclass(slots=True)
class TurnMetrics:
    """Everything measured for one agent turn (and the user turn before it).

    Times are seconds since the session started; latencies are seconds.

    Attributes:
        turn: 1-based index in the session.
        speech_id: The agent utterance's id.
        source: ``user_turn``, ``reply`` or ``say``.
        user_speech_started_at: When the user's (last) speech began.
        user_speech_ended_at: When the user actually stopped speaking.
        vad_end_at: When the VAD reported it (after its silence hang-over).
        stt_final_at: When the last final transcript arrived.
        eou_decided_at: When the turn was committed.
        eou_probability: The turn detector's probability, if one ran.
        first_token_at: When the LLM's first chunk arrived.
        first_audio_at: When the first agent audio went out.
        ended_at: When the reply finished (played out or interrupted).
        stt_latency: End of speech → final transcript.
        eou_delay: End of speech → turn committed.
        e2e_latency: End of user speech → first agent audio out.
        interrupted: Whether the user cut the reply off.
        user_text: The user's words (only with ``record_text``).
        agent_text: What the user heard (only with ``record_text``).
        stt: STT provider label and model.
        eou: EOU provider label.
        llm: One entry per LLM request.
        tools: One entry per tool call.
        tts: Synthesis figures.
    """

    turn: int
    speech_id: str
    source: str
    user_speech_started_at: float | None = None
    user_speech_ended_at: float | None = None
    vad_end_at: float | None = None
    stt_final_at: float | None = None
    eou_decided_at: float | None = None
    eou_probability: float | None = None
    first_token_at: float | None = None
    first_audio_at: float | None = None
    ended_at: float | None = None
    stt_latency: float | None = None
    eou_delay: float | None = None
    e2e_latency: float | None = None
    interrupted: bool = False
    user_text: str | None = None
    agent_text: str | None = None
    stt: dict[str, str | None] = field(default_factory=dict)
    eou: dict[str, str | None] = field(default_factory=dict)
    llm: list[LLMMetrics] = field(default_factory=list)
    tools: list[ToolMetrics] = field(default_factory=list)
    tts: TTSMetrics | None = None

    @property
    def llm_ttft(self) -> float | None:
        """Time to first token of the turn's first LLM request."""
        return self.llm[0].ttft if self.llm else None

    @property
    def tts_ttfb(self) -> float | None:
        """The TTS's time to first byte."""
        return self.tts.ttfb if self.tts else None

    def finish(self) -> None:
        """Derive the latencies from the recorded times."""
        end = self.user_speech_ended_at
        if end is not None:
            if self.stt_final_at is not None:
                self.stt_latency = round(self.stt_final_at - end, 6)
            if self.eou_decided_at is not None:
                self.eou_delay = round(self.eou_decided_at - end, 6)
            if self.first_audio_at is not None:
                self.e2e_latency = round(self.first_audio_at - end, 6)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (derived latencies included)."""
        data = asdict(self)
        data["llm_ttft"] = self.llm_ttft
        data["tts_ttfb"] = self.tts_ttfb
        return data

    def log_line(self) -> str:
        """A one-line latency summary for the log."""

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1000:.0f}ms"

        tools = f" tools {len(self.tools)}" if self.tools else ""
        cut = " (interrupted)" if self.interrupted else ""
        return (
            f"turn {self.turn}: stt {ms(self.stt_latency)} | eou {ms(self.eou_delay)} | "
            f"llm ttft {ms(self.llm_ttft)} | tts ttfb {ms(self.tts_ttfb)} | "
            f"e2e {ms(self.e2e_latency)}{tools}{cut}"
        )


@dataclass(slots=True)
class SessionSummary:
    """Totals for a session, emitted on close.

    Attributes:
        session_id: The session.
        duration: Seconds from start to close.
        turns: Agent turns measured.
        e2e_p50: Median end-to-end latency of user turns.
        e2e_p90: 90th percentile of the same.
        interruptions: User interruptions of the agent.
        false_interruptions: Pauses that resumed (no words followed).
        backchannels: Listener feedback ignored.
        tool_calls: Tool calls made.
        tool_errors: Tool calls that failed.
        prompt_tokens: Tokens sent to LLMs.
        completion_tokens: Tokens generated.
        errors: ``error`` events.
    """

    session_id: str
    duration: float
    turns: int
    e2e_p50: float | None
    e2e_p90: float | None
    interruptions: int
    false_interruptions: int
    backchannels: int
    tool_calls: int
    tool_errors: int
    prompt_tokens: int
    completion_tokens: int
    errors: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def summarize(session_id: str, duration: float, turns: list[TurnMetrics], counts: dict[str, int]) -> SessionSummary:
    """Build the summary from a session's turns and event counts."""
    e2e = sorted(t.e2e_latency for t in turns if t.e2e_latency is not None)
    p90 = e2e[min(len(e2e) - 1, int(round(0.9 * (len(e2e) - 1))))] if e2e else None
    tools = [tool for t in turns for tool in t.tools]
    return SessionSummary(
        session_id=session_id,
        duration=round(duration, 6),
        turns=len(turns),
        e2e_p50=statistics.median(e2e) if e2e else None,
        e2e_p90=p90,
        interruptions=counts.get("interruptions", 0),
        false_interruptions=counts.get("false_interruptions", 0),
        backchannels=counts.get("backchannels", 0),
        tool_calls=len(tools),
        tool_errors=sum(tool.is_error for tool in tools),
        prompt_tokens=sum(llm.prompt_tokens for t in turns for llm in t.llm),
        completion_tokens=sum(llm.completion_tokens for t in turns for llm in t.llm),
        errors=counts.get("errors", 0),
    )
