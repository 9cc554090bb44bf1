"""OpenTelemetry traces for sessions (optional: ``pip install "vocalis[otel]"``).

Spans are built from each turn's :class:`~vocalis.observability.metrics.TurnMetrics` when
the turn ends, with explicit start and end times, so tracing adds nothing to
the per-frame or per-token path. The tree::

    vocalis.session
    ├── vocalis.user_turn
    │   ├── vocalis.stt
    │   └── vocalis.eou
    └── vocalis.agent_turn
        ├── vocalis.llm   (one per request)
        ├── vocalis.tool  (one per call)
        └── vocalis.tts

Every span lies within its parent in time: a turn's span covers all its
children. The user's and the agent's words become span attributes only when
the session was created with ``record_text=True``.

A session attaches tracing by itself when the application has imported
OpenTelemetry and configured an SDK tracer provider; nothing is imported
otherwise.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vocalis.event_types import CloseEvent
    from vocalis.observability.metrics import TurnMetrics
    from vocalis.observability.recorder import TracedSession

TRACER_NAME = "vocalis"


def _present(attributes: dict[str, Any]) -> dict[str, Any]:
    """Span attributes without the unset ones (OpenTelemetry rejects None)."""
    return {key: value for key, value in attributes.items() if value is not None}


def _interval(start: float, end: float) -> tuple[float, float]:
    """``(start, end)`` with the end never before the start."""
    return start, max(start, end)


def tracing_configured() -> bool:
    """Whether the application set up a real (SDK) tracer provider.

    Does not import OpenTelemetry: without it loaded, the answer is no.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return False
    provider = trace.get_tracer_provider()
    return type(provider).__name__ not in ("ProxyTracerProvider", "NoOpTracerProvider")


class SessionTracer:
    """Turns a session's metrics into spans.

    Args:
        session: The (started) session to trace.
        tracer_provider: Where spans go; the global provider by default.
    """

    def __init__(self, session: TracedSession, tracer_provider: Any = None) -> None:
        from opentelemetry import trace

        self._trace = trace
        self.session = session
        self.tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
        self.record_text = session.recorder.record_text
        loop_now = asyncio.get_running_loop().time()
        # Wall-clock nanoseconds of the session's time zero.
        self._zero_ns = time.time_ns() - int((loop_now - session.recorder.started_at) * 1e9)
        self.root = self.tracer.start_span(
            "vocalis.session",
            start_time=self._zero_ns,
            attributes={"vocalis.session_id": session.id, "vocalis.agent": session.agent.name},
        )
        self._latest = 0.0  # the end of the latest span so far (the session's covers it)
        session.on("metrics_collected", lambda payload: self.record_turn(payload["metrics"]))
        session.on("close", self._on_close)

    def _ns(self, seconds: float | None) -> int | None:
        return None if seconds is None else self._zero_ns + int(seconds * 1e9)

    def _span(self, name: str, parent: Any, start: float, end: float, attrs: dict[str, Any]) -> Any:
        context = self._trace.set_span_in_context(parent)
        span = self.tracer.start_span(name, context=context, start_time=self._ns(start), attributes=_present(attrs))
        span.end(end_time=self._ns(end))
        return span

    def record_turn(self, m: TurnMetrics) -> None:
        """Emit the spans of one finished turn.

        Every span lies within its parent: a turn's span starts no later
        than its first child and ends no earlier than its last (a ``say()``
        turn starts when its text reaches the TTS; a preemptive LLM request
        may start before the user's turn was committed).
        """
        if m.user_speech_ended_at is not None:
            ended = m.user_speech_ended_at
            stt_end = m.stt_final_at if m.stt_final_at is not None else ended
            eou_end = m.eou_decided_at if m.eou_decided_at is not None else ended
            children = [
                (
                    "vocalis.stt",
                    *_interval(ended, stt_end),
                    {
                        "vocalis.provider": m.stt.get("provider"),
                        "vocalis.model": m.stt.get("model"),
                        "vocalis.stt.latency": m.stt_latency,
                    },
                ),
                (
                    "vocalis.eou",
                    *_interval(ended, eou_end),
                    {
                        "vocalis.provider": m.eou.get("provider"),
                        "vocalis.eou.probability": m.eou_probability,
                        "vocalis.eou.delay": m.eou_delay,
                    },
                ),
            ]
            start = m.user_speech_started_at if m.user_speech_started_at is not None else ended
            self._tree(
                "vocalis.user_turn",
                start,
                eou_end,
                {
                    "vocalis.turn": m.turn,
                    "vocalis.user_text": m.user_text if self.record_text else None,
                },
                children,
            )
        children = []
        for llm in m.llm:
            children.append(
                (
                    "vocalis.llm",
                    *_interval(llm.started_at, llm.started_at + (llm.duration or 0.0)),
                    {
                        "vocalis.provider": llm.provider,
                        "vocalis.model": llm.model,
                        "vocalis.llm.ttft": llm.ttft,
                        "vocalis.llm.prompt_tokens": llm.prompt_tokens,
                        "vocalis.llm.completion_tokens": llm.completion_tokens,
                        "vocalis.llm.tokens_per_second": llm.tokens_per_second,
                        "vocalis.llm.preemptive": llm.preemptive,
                    },
                )
            )
        for tool in m.tools:
            children.append(
                (
                    "vocalis.tool",
                    *_interval(tool.started_at, tool.started_at + tool.duration),
                    {
                        "vocalis.tool.name": tool.name,
                        "vocalis.tool.call_id": tool.call_id,
                        "vocalis.tool.is_error": tool.is_error,
                    },
                )
            )
        if m.tts is not None and m.tts.started_at is not None:
            tts_end = m.ended_at if m.ended_at is not None else m.tts.started_at
            children.append(
                (
                    "vocalis.tts",
                    *_interval(m.tts.started_at, tts_end),
                    {
                        "vocalis.provider": m.tts.provider,
                        "vocalis.model": m.tts.model,
                        "vocalis.tts.ttfb": m.tts.ttfb,
                        "vocalis.tts.characters": m.tts.characters,
                        "vocalis.tts.audio_duration": m.tts.audio_duration,
                    },
                )
            )
        starts = [t for t in (m.eou_decided_at, m.first_audio_at) if t is not None]
        agent_start = min(starts) if starts else None
        agent_end = m.ended_at
        if agent_start is None and agent_end is None and not children:
            return
        self._tree(
            "vocalis.agent_turn",
            agent_start,
            agent_end,
            {
                "vocalis.turn": m.turn,
                "vocalis.speech_id": m.speech_id,
                "vocalis.source": m.source,
                "vocalis.e2e_latency": m.e2e_latency,
                "vocalis.interrupted": m.interrupted,
                "vocalis.agent_text": m.agent_text if self.record_text else None,
            },
            children,
        )

    def _tree(
        self,
        name: str,
        start: float | None,
        end: float | None,
        attrs: dict[str, Any],
        children: list[tuple[str, float, float, dict[str, Any]]],
    ) -> None:
        """A span under the session's, stretched over its children, and the children."""
        ends = [c[2] for c in children] + [t for t in (start, end) if t is not None]
        starts = [c[1] for c in children] + ([start] if start is not None else []) or ends
        first, last = min(starts), max(ends)
        self._latest = max(self._latest, last)
        context = self._trace.set_span_in_context(self.root)
        parent = self.tracer.start_span(name, context=context, start_time=self._ns(first), attributes=_present(attrs))
        for child_name, child_start, child_end, child_attrs in children:
            self._span(child_name, parent, child_start, child_end, child_attrs)
        parent.end(end_time=self._ns(last))

    def _on_close(self, payload: CloseEvent) -> None:
        summary = payload.get("summary")
        if summary is not None:
            for key, value in summary.to_dict().items():
                if value is not None and key != "session_id":
                    self.root.set_attribute(f"vocalis.summary.{key}", value)
        now = self.session.recorder.rel(asyncio.get_running_loop().time()) or 0.0
        self.root.end(end_time=self._ns(max(now, self._latest)))


def attach_tracing(session: TracedSession, tracer_provider: Any = None) -> SessionTracer:
    """Trace ``session`` (call after ``start``; the session does it by itself
    when a global SDK tracer provider is configured).

    Raises:
        ImportError: OpenTelemetry is not installed (``pip install "vocalis[otel]"``).
    """
    return SessionTracer(session, tracer_provider)
