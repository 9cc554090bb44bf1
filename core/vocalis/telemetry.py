"""OpenTelemetry traces for sessions (optional: ``pip install "vocalis[otel]"``).

Spans are built from each turn's :class:`~vocalis.metrics.TurnMetrics` when
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

The user's and the agent's words become span attributes only when the session
was created with ``record_text=True``.

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
    from vocalis.metrics import TurnMetrics
    from vocalis.session import AgentSession

TRACER_NAME = "vocalis"


def _present(attributes: dict[str, Any]) -> dict[str, Any]:
    """Span attributes without the unset ones (OpenTelemetry rejects None)."""
    return {key: value for key, value in attributes.items() if value is not None}


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

    def __init__(self, session: AgentSession, tracer_provider: Any = None) -> None:
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
        session.on("metrics_collected", lambda payload: self.record_turn(payload["metrics"]))
        session.on("close", self._on_close)

    def _ns(self, seconds: float | None) -> int | None:
        return None if seconds is None else self._zero_ns + int(seconds * 1e9)

    def _span(self, name: str, parent: Any, start: float | None, end: float | None, attrs: dict[str, Any]) -> Any:
        context = self._trace.set_span_in_context(parent)
        span = self.tracer.start_span(name, context=context, start_time=self._ns(start), attributes=_present(attrs))
        span.end(end_time=self._ns(end if end is not None else start))
        return span

    def record_turn(self, m: TurnMetrics) -> None:
        """Emit the spans of one finished turn."""
        if m.user_speech_ended_at is not None:
            start = m.user_speech_started_at if m.user_speech_started_at is not None else m.user_speech_ended_at
            context = self._trace.set_span_in_context(self.root)
            user = self.tracer.start_span(
                "vocalis.user_turn",
                context=context,
                start_time=self._ns(start),
                attributes=_present({
                    "vocalis.turn": m.turn,
                    "vocalis.user_text": m.user_text if self.record_text else None,
                }),
            )
            self._span("vocalis.stt", user, m.user_speech_ended_at, m.stt_final_at or m.user_speech_ended_at, {
                "vocalis.provider": m.stt.get("provider"),
                "vocalis.model": m.stt.get("model"),
                "vocalis.stt.latency": m.stt_latency,
            })
            self._span("vocalis.eou", user, m.user_speech_ended_at, m.eou_decided_at, {
                "vocalis.provider": m.eou.get("provider"),
                "vocalis.eou.probability": m.eou_probability,
                "vocalis.eou.delay": m.eou_delay,
            })
            user.end(end_time=self._ns(m.eou_decided_at or m.user_speech_ended_at))
        agent_start = m.eou_decided_at if m.eou_decided_at is not None else (m.llm[0].started_at if m.llm else m.first_audio_at)
        context = self._trace.set_span_in_context(self.root)
        agent = self.tracer.start_span(
            "vocalis.agent_turn",
            context=context,
            start_time=self._ns(agent_start),
            attributes=_present({
                "vocalis.turn": m.turn,
                "vocalis.speech_id": m.speech_id,
                "vocalis.source": m.source,
                "vocalis.e2e_latency": m.e2e_latency,
                "vocalis.interrupted": m.interrupted,
                "vocalis.agent_text": m.agent_text if self.record_text else None,
            }),
        )
        for llm in m.llm:
            self._span("vocalis.llm", agent, llm.started_at, llm.started_at + (llm.duration or 0.0), {
                "vocalis.provider": llm.provider,
                "vocalis.model": llm.model,
                "vocalis.llm.ttft": llm.ttft,
                "vocalis.llm.prompt_tokens": llm.prompt_tokens,
                "vocalis.llm.completion_tokens": llm.completion_tokens,
                "vocalis.llm.tokens_per_second": llm.tokens_per_second,
                "vocalis.llm.preemptive": llm.preemptive,
            })
        for tool in m.tools:
            self._span("vocalis.tool", agent, tool.started_at, tool.started_at + tool.duration, {
                "vocalis.tool.name": tool.name,
                "vocalis.tool.call_id": tool.call_id,
                "vocalis.tool.is_error": tool.is_error,
            })
        if m.tts is not None and m.tts.started_at is not None:
            self._span("vocalis.tts", agent, m.tts.started_at, m.ended_at, {
                "vocalis.provider": m.tts.provider,
                "vocalis.model": m.tts.model,
                "vocalis.tts.ttfb": m.tts.ttfb,
                "vocalis.tts.characters": m.tts.characters,
                "vocalis.tts.audio_duration": m.tts.audio_duration,
            })
        agent.end(end_time=self._ns(m.ended_at))

    def _on_close(self, payload: dict[str, Any]) -> None:
        summary = payload.get("summary")
        if summary is not None:
            for key, value in summary.to_dict().items():
                if value is not None and key != "session_id":
                    self.root.set_attribute(f"vocalis.summary.{key}", value)
        self.root.end(end_time=self._ns(self.session.recorder.rel(asyncio.get_running_loop().time())))


def attach_tracing(session: AgentSession, tracer_provider: Any = None) -> SessionTracer:
    """Trace ``session`` (call after ``start``; the session does it by itself
    when a global SDK tracer provider is configured).

    Raises:
        ImportError: OpenTelemetry is not installed (``pip install "vocalis[otel]"``).
    """
    return SessionTracer(session, tracer_provider)
