"""Collects a session's metrics: per-turn records, counts, the summary.

Observers (this recorder, the metrics file, traces) see the session only
through :class:`ObservedSession`: its id, its agent's name, its pipeline's
providers and its events. They never change it.
"""

from __future__ import annotations

import asyncio
import statistics
from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from loguru import logger

from vocalis.observability.metrics import LLMMetrics, SessionSummary, ToolMetrics, TTSMetrics, TurnMetrics
from vocalis.stages import (
    AgentAudioStarted,
    LLMFirstChunk,
    LLMRequestEnded,
    LLMRequestStarted,
    StageEvent,
    SynthesisEnded,
    SynthesisStarted,
    ToolCallFinished,
    UserTurnTiming,
    UtteranceEnded,
    UtteranceStarted,
)

if TYPE_CHECKING:
    from vocalis.providers.base import Provider

__all__ = ["MetricsRecorder", "ObservedSession", "TracedSession", "UserTurnTiming"]

_COUNTED = {
    "interruption": "interruptions",
    "false_interruption": "false_interruptions",
    "backchannel": "backchannels",
    "error": "errors",
}


class ObservedAgent(Protocol):
    """The active agent, as observers see it."""

    @property
    def name(self) -> str:
        """A label for logs, metrics and traces."""
        ...


class ObservedPipeline(Protocol):
    """A pipeline, as observers see it."""

    def providers(self) -> dict[str, Provider]:
        """Its providers by component (``stt``, ``llm``, ... or ``model``)."""
        ...


class ObservedSession(Protocol):
    """A session, as its observers see it (:class:`vocalis.AgentSession` fits)."""

    @property
    def id(self) -> str:
        """The session's id."""
        ...

    @property
    def agent(self) -> ObservedAgent:
        """The active agent."""
        ...

    @property
    def pipeline(self) -> ObservedPipeline:
        """The session's pipeline."""
        ...

    def on(self, event: Any, handler: Any = None) -> Any:
        """Add an event handler."""
        ...

    def on_any(self, handler: Callable[[str, tuple[Any, ...]], Any]) -> None:
        """Call ``handler(event, args)`` for every event."""
        ...

    def emit(self, event: Any, *args: Any) -> None:
        """Emit an event."""
        ...


class TracedSession(ObservedSession, Protocol):
    """A session with its recorder, as traces see it."""

    @property
    def recorder(self) -> MetricsRecorder:
        """The session's metrics recorder."""
        ...


class MetricsRecorder:
    """Builds a :class:`TurnMetrics` per agent utterance and keeps the newest.

    An observer (:class:`vocalis.stages.Observer`): the record is built from
    the stage events the pipeline reports, never written by the pipeline.

    ``turns`` holds at most ``max_turns`` records (the oldest are dropped:
    they were emitted as ``metrics_collected`` already); running totals keep
    the session summary exact over every turn.

    Args:
        session: The session measured.
        record_text: Keep user and agent text in the metrics (off by default:
            metrics files and traces often leave the machine).
        max_turns: Records kept in :attr:`turns`.
    """

    def __init__(self, session: ObservedSession, *, record_text: bool = False, max_turns: int = 1_000) -> None:
        self.session = session
        self.record_text = record_text
        self.turns: list[TurnMetrics] = []
        self.max_turns = max_turns
        self.turn_count = 0
        self._totals = _Totals()
        self.counts: dict[str, int] = {}
        self.started_at = 0.0
        self.summary: SessionSummary | None = None
        self._open: dict[str, TurnMetrics] = {}  # speech id -> the record of a running utterance
        self._llm_started: dict[str, float] = {}  # speech id -> its current LLM request's start
        self._llm_first: dict[str, float] = {}  # speech id -> its current request's first chunk
        session.on_any(self._count)

    def _count(self, event: str, args: tuple[Any, ...]) -> None:
        key = _COUNTED.get(event)
        if key is not None:
            self.counts[key] = self.counts.get(key, 0) + 1

    def start(self) -> None:
        """The session started: times are measured from now."""
        self.started_at = asyncio.get_running_loop().time()

    def rel(self, loop_time: float | None) -> float | None:
        """A loop time as seconds since the session started."""
        return None if loop_time is None else round(loop_time - self.started_at, 6)

    # -- the observer --------------------------------------------------------------
    def on_stage(self, event: StageEvent) -> None:
        """Build each utterance's record from what the pipeline reports."""
        if isinstance(event, UtteranceStarted):
            self._open[event.speech_id] = self._begin(event)
            return
        turn = self._open.get(event.speech_id)
        if turn is None:
            return
        match event:
            case LLMRequestStarted():
                turn.llm.append(LLMMetrics(event.provider, event.model, self.rel(event.at) or 0.0))
                turn.llm[-1].preemptive = event.preemptive
                self._llm_started[event.speech_id] = event.at
            case LLMFirstChunk():
                self._llm_first[event.speech_id] = event.at
                started = self._llm_started.get(event.speech_id)
                if turn.llm and started is not None:
                    turn.llm[-1].ttft = round(event.at - started, 6)
                if turn.first_token_at is None:
                    turn.first_token_at = self.rel(event.at)
            case LLMRequestEnded():
                self._end_llm(turn, event)
            case ToolCallFinished():
                turn.tools.append(
                    ToolMetrics(
                        event.name, event.call_id, self.rel(event.started_at) or 0.0, event.duration, event.is_error
                    )
                )
            case SynthesisStarted():
                turn.tts = TTSMetrics(event.provider, event.model, started_at=self.rel(event.at))
            case AgentAudioStarted():
                self._first_audio(turn, event)
            case SynthesisEnded():
                if turn.tts is not None:
                    turn.tts.characters = event.characters
                    turn.tts.audio_duration = round(event.audio_duration, 6)
            case UtteranceEnded():
                del self._open[event.speech_id]
                self._llm_started.pop(event.speech_id, None)
                self._llm_first.pop(event.speech_id, None)
                self._end(turn, event)

    def _begin(self, event: UtteranceStarted) -> TurnMetrics:
        metrics = TurnMetrics(turn=self.turn_count + 1, speech_id=event.speech_id, source=event.source)
        timing = event.user_timing
        if timing is not None:
            metrics.user_speech_started_at = self.rel(timing.speech_started_at)
            metrics.user_speech_ended_at = self.rel(timing.speech_ended_at)
            metrics.vad_end_at = self.rel(timing.vad_end_at)
            metrics.stt_final_at = self.rel(timing.stt_final_at)
            metrics.eou_decided_at = self.rel(timing.decided_at)
            metrics.eou_probability = timing.probability
        if self.record_text:
            metrics.user_text = event.user_text
        providers = self.session.pipeline.providers()
        for kind in ("stt", "turn_detector"):
            provider = providers.get(kind)
            if provider is not None:
                info = {"provider": provider.label, "model": provider.model_name}
                if kind == "stt":
                    metrics.stt = info
                else:
                    metrics.eou = info
        return metrics

    def _end_llm(self, turn: TurnMetrics, event: LLMRequestEnded) -> None:
        started = self._llm_started.pop(event.speech_id, None)
        first = self._llm_first.pop(event.speech_id, None)
        if not turn.llm or started is None:
            return
        record = turn.llm[-1]
        record.duration = round(event.at - started, 6)
        record.prompt_tokens = event.prompt_tokens
        # Providers without usage: chunks ≈ tokens.
        record.completion_tokens = event.completion_tokens or event.chunks
        if first is not None and event.at > first and record.completion_tokens:
            record.tokens_per_second = round(record.completion_tokens / (event.at - first), 3)

    def _first_audio(self, turn: TurnMetrics, event: AgentAudioStarted) -> None:
        turn.first_audio_at = self.rel(event.at)
        if event.user_speech_ended_at is not None:
            turn.user_speech_ended_at = self.rel(event.user_speech_ended_at)
        tts = turn.tts
        if tts is not None and tts.started_at is not None and turn.first_audio_at is not None:
            tts.ttfb = round(turn.first_audio_at - tts.started_at, 6)

    def _end(self, metrics: TurnMetrics, event: UtteranceEnded) -> None:
        """The utterance is over: finish, keep and emit its record."""
        metrics.ended_at = self.rel(event.at)
        metrics.interrupted = event.interrupted
        if self.record_text:
            metrics.agent_text = event.text
        metrics.finish()
        if event.discarded or (metrics.first_audio_at is None and not metrics.llm):
            return
        self.turns.append(metrics)
        self.turn_count += 1
        self._totals.add(metrics)
        if len(self.turns) > self.max_turns:
            del self.turns[0]
        logger.info("{}", metrics.log_line())
        self.session.emit("metrics_collected", {"metrics": metrics})

    def close(self) -> SessionSummary:
        """Build the session summary (once)."""
        if self.summary is None:
            duration = asyncio.get_running_loop().time() - self.started_at
            self.summary = self._totals.summary(self.session.id, duration, self.counts)
            s = self.summary
            p50 = "-" if s.e2e_p50 is None else f"{s.e2e_p50 * 1000:.0f}ms"
            logger.info(
                "session summary: {} turns, e2e p50 {}, {} interruptions ({} false, {} backchannels), "
                "{} tool calls, {} errors",
                s.turns,
                p50,
                s.interruptions,
                s.false_interruptions,
                s.backchannels,
                s.tool_calls,
                s.errors,
            )
        return self.summary


class _Totals:
    """What the summary needs from every turn, without keeping the turns.

    One 8-byte float per turn with a latency stays, so the percentiles are
    exact; everything else is a running sum.
    """

    def __init__(self) -> None:
        self.turns = 0
        self.e2e = array("d")
        self.tool_calls = 0
        self.tool_errors = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def add(self, turn: TurnMetrics) -> None:
        self.turns += 1
        if turn.e2e_latency is not None:
            self.e2e.append(turn.e2e_latency)
        self.tool_calls += len(turn.tools)
        self.tool_errors += sum(tool.is_error for tool in turn.tools)
        self.prompt_tokens += sum(llm.prompt_tokens for llm in turn.llm)
        self.completion_tokens += sum(llm.completion_tokens for llm in turn.llm)

    def summary(self, session_id: str, duration: float, counts: dict[str, int]) -> SessionSummary:
        """The same figures as :func:`vocalis.observability.metrics.summarize` over every turn."""
        e2e = sorted(self.e2e)
        p90 = e2e[min(len(e2e) - 1, round(0.9 * (len(e2e) - 1)))] if e2e else None
        return SessionSummary(
            session_id=session_id,
            duration=round(duration, 6),
            turns=self.turns,
            e2e_p50=statistics.median(e2e) if e2e else None,
            e2e_p90=p90,
            interruptions=counts.get("interruptions", 0),
            false_interruptions=counts.get("false_interruptions", 0),
            backchannels=counts.get("backchannels", 0),
            tool_calls=self.tool_calls,
            tool_errors=self.tool_errors,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            errors=counts.get("errors", 0),
        )
