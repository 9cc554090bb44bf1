"""``/metrics``: a serving process's figures in Prometheus's text format.

Each :class:`ServeMetrics` owns its own ``CollectorRegistry`` (never the
process-global default one), so two servers in one process, or the tests,
never mix their counts. Sessions report through their events: a turn's
``metrics_collected`` feeds the stage histograms, ``error`` the error
counter; the gauges are read from the server when scraped.

prometheus-client comes with ``vocalis[serve]``; without it ``/metrics``
answers 501 and says what to install.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vocalis.event_types import ErrorEvent, MetricsCollectedEvent
    from vocalis.session.agent_session import AgentSession

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: a voice turn's stages run from ~10 ms (a cached TTS) to several seconds (a slow LLM).
_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
STAGES = ("stt", "eou", "llm_ttft", "tts_ttfb", "e2e")


def available() -> bool:
    """Whether prometheus-client is installed."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


class ServeMetrics:
    """The Prometheus metrics of one :class:`~vocalis.serve.server.SessionServer`.

    The gauges are read from the server at each scrape, through these callables.

    Args:
        active: Sessions running.
        capacity: ``max_sessions``.
        ready: Whether new sessions are welcome.
        loop_lag: The event loop's recent worst lag, seconds.
        load: The load figure.
    """

    def __init__(
        self,
        *,
        active: Callable[[], int],
        capacity: Callable[[], int],
        ready: Callable[[], bool],
        loop_lag: Callable[[], float],
        load: Callable[[], float],
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.admitted = Counter("vocalis_sessions_admitted", "Sessions admitted.", registry=r)
        self.refused = Counter("vocalis_sessions_refused", "Sessions refused, by reason.", ["reason"], registry=r)
        self.resumed = Counter("vocalis_sessions_resumed", "Sessions resumed from the store.", registry=r)
        self.closed = Counter("vocalis_sessions_closed", "Sessions closed, by reason.", ["reason"], registry=r)
        self.errors = Counter(
            "vocalis_errors", "Errors reported by sessions, by source and kind.", ["provider", "kind"], registry=r
        )
        self.stage = Histogram(
            "vocalis_turn_stage_seconds",
            "Latency of each stage of an agent turn (end of user speech to first agent audio is e2e).",
            ["stage"],
            buckets=_BUCKETS,
            registry=r,
        )
        gauges: list[tuple[str, str, Callable[[], float]]] = [
            ("vocalis_sessions_active", "Sessions running now.", active),
            ("vocalis_sessions_max", "Sessions this process takes at most.", capacity),
            ("vocalis_ready", "1 when the process takes new sessions, else 0.", lambda: float(ready())),
            ("vocalis_loop_lag_seconds", "Worst event-loop wake-up delay of the last 2.5 s.", loop_lag),
            ("vocalis_load", "The load figure readiness compares with --max-load (1.0 = full).", load),
        ]
        for name, help_text, read in gauges:
            Gauge(name, help_text, registry=r).set_function(read)

    def attach(self, session: AgentSession) -> None:
        """Count ``session``'s turns and errors."""
        session.on("metrics_collected", self._on_turn)
        session.on("error", self._on_error)

    def _on_turn(self, event: MetricsCollectedEvent) -> None:
        turn: Any = event["metrics"]
        values = (turn.stt_latency, turn.eou_delay, turn.llm_ttft, turn.tts_ttfb, turn.e2e_latency)
        for stage, value in zip(STAGES, values, strict=True):
            if value is not None and value >= 0:
                self.stage.labels(stage).observe(value)

    def _on_error(self, event: ErrorEvent) -> None:
        self.errors.labels(_source_kind(event["source"]), event["kind"]).inc()

    def render(self) -> bytes:
        """The text exposition of every metric."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def _source_kind(source: str) -> str:
    """A bounded label: ``"llm:openai"`` stays, a tool's or hook's name keeps its kind only."""
    kind, _, name = source.partition(":")
    if kind in ("stt", "llm", "tts", "vad", "eou", "realtime", "transport", "tools", "session_store"):
        return f"{kind}:{name[:40]}"
    return kind[:40] or "unknown"
