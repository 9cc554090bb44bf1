"""Capture everything a session lets out, to prove that secrets stay in.

API keys, ICE credentials and authorization headers must never reach a log
line, an event, a metrics file or a trace. :class:`OutputCapture` collects
all of those while a test runs a session, plus whatever else the test adds
(reprs, CLI output), and :meth:`OutputCapture.assert_absent` says where a
secret showed up::

    with OutputCapture() as capture:
        session = AgentSession(agent, pipeline)
        capture.watch(session)            # events, metrics JSONL, spans
        await session.start(transport)
        ...
        await session.close()
        capture.add_repr(session, pipeline.llm, pipeline.llm.settings)
    capture.assert_absent(["sk-test-0123"])
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.observability.metrics_file import MetricsFileWriter

if TYPE_CHECKING:
    from vocalis.session.agent_session import AgentSession

__all__ = ["OutputCapture"]


class OutputCapture:
    """Collect every output channel of the sessions it watches.

    Entering the context adds a loguru sink at TRACE (JSON records: message,
    extra fields and exception text, as a log shipper would get them) and a
    root :mod:`logging` handler at DEBUG (HTTP and SDK libraries log there).
    :meth:`watch` adds a session's events (every one, through ``on_any``),
    its metrics as ``vocalis serve --metrics`` writes them and, when
    ``opentelemetry-sdk`` is installed, its spans.
    """

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="vocalis-capture-")
        self._log = io.StringIO()
        self._stdlib = io.StringIO()
        self._events: list[str] = []
        self._extra: list[tuple[str, str]] = []
        self._writers: list[MetricsFileWriter] = []
        self._exporter: Any = None
        self._tracer_provider: Any = None
        self._sink_id: int | None = None
        self._handler: logging.Handler | None = None
        self._root_level = logging.WARNING
        self._metrics: str | None = None

    # -- context ------------------------------------------------------------------
    def __enter__(self) -> OutputCapture:
        self._sink_id = logger.add(self._log, level="TRACE", serialize=True, diagnose=False, enqueue=False)
        self._handler = logging.StreamHandler(self._stdlib)
        self._handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        root = logging.getLogger()
        self._root_level = root.level
        root.addHandler(self._handler)
        root.setLevel(logging.DEBUG)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._sink_id is not None:
            with contextlib.suppress(ValueError):  # configure_logging() (the CLI) removed it
                logger.remove(self._sink_id)
            self._sink_id = None
        if self._handler is not None:
            root = logging.getLogger()
            root.removeHandler(self._handler)
            root.setLevel(self._root_level)
            self._handler = None
        for writer in self._writers:
            writer.close()
        self._metrics = self._read_metrics()
        self._dir.cleanup()

    # -- sources ------------------------------------------------------------------
    def watch(self, session: AgentSession) -> None:
        """Record ``session``'s events, metrics file and spans. Call before ``start``."""
        path = Path(self._dir.name) / f"metrics-{len(self._writers)}.jsonl"
        writer = MetricsFileWriter(path)
        writer.attach(session)
        self._writers.append(writer)

        def on_any(event: str, args: tuple[Any, ...]) -> None:
            self._events.append(f"{event} {args!r} {json.dumps(args, default=repr)}")
            # Tracing needs the started session; its first event comes from start().
            if session.tracer is None and self._tracer() is not None:
                session.trace(self._tracer_provider)

        session.on_any(on_any)

    def _tracer(self) -> Any:
        if self._tracer_provider is None:
            try:
                from opentelemetry.sdk.trace import TracerProvider
                from opentelemetry.sdk.trace.export import SimpleSpanProcessor
                from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                    InMemorySpanExporter,
                )
            except ImportError:
                return None
            self._exporter = InMemorySpanExporter()
            self._tracer_provider = TracerProvider()
            self._tracer_provider.add_span_processor(SimpleSpanProcessor(self._exporter))
        return self._tracer_provider

    def add(self, label: str, text: str) -> None:
        """Add another output, e.g. a CLI command's output."""
        self._extra.append((label, text))

    def add_repr(self, *objects: Any) -> None:
        """Add ``repr()`` and ``str()`` of each object."""
        for obj in objects:
            self._extra.append((f"repr of {type(obj).__name__}", f"{obj!r}\n{obj!s}"))

    # -- results ------------------------------------------------------------------
    @property
    def spans(self) -> list[Any]:
        """The finished spans (empty without ``opentelemetry-sdk``)."""
        return list(self._exporter.get_finished_spans()) if self._exporter is not None else []

    def outputs(self) -> dict[str, str]:
        """Every captured channel's text, by channel."""
        found = {
            "loguru": self._log.getvalue(),
            "logging": self._stdlib.getvalue(),
            "events": "\n".join(self._events),
            "metrics": self._metrics if self._metrics is not None else self._read_metrics(),
            "spans": "\n".join(span.to_json() for span in self.spans),
        }
        for label, text in self._extra:
            found[label] = found.get(label, "") + text + "\n"
        return found

    def _read_metrics(self) -> str:
        return "".join(w.path.read_text(encoding="utf-8") for w in self._writers if w.path.exists())

    def where(self, secret: str) -> list[str]:
        """The channels whose text contains ``secret``."""
        return [label for label, text in self.outputs().items() if secret in text]

    def assert_absent(self, secrets: Iterable[str]) -> None:
        """Raise AssertionError naming every channel a secret appears in.

        The message shows the surroundings with the secret itself masked.
        """
        secrets = list(secrets)
        if not all(secrets):
            raise ValueError("an empty secret matches everything")
        problems = []
        outputs = self.outputs()
        for number, secret in enumerate(secrets):
            for label, text in outputs.items():
                at = text.find(secret)
                if at >= 0:
                    context = text[max(0, at - 80) : at + len(secret) + 80]
                    for other, hidden in enumerate(secrets):
                        context = context.replace(hidden, f"<secret {other}>")
                    problems.append(f"secret {number} appears in {label}: ...{context}...")
        if problems:
            raise AssertionError("\n".join(problems))
