"""Write a session's metrics as JSON lines (read by ``vocalis report``).

Each line is one object with a ``type``:

- ``session``: ``session_id``, ``started_at`` (wall clock, ISO 8601), ``agent``,
  ``providers`` (label and model per pipeline component);
- ``turn``: ``session_id`` plus every :class:`~vocalis.observability.metrics.TurnMetrics` field;
- ``summary``: ``session_id`` plus every :class:`~vocalis.observability.metrics.SessionSummary` field.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vocalis.event_types import CloseEvent, MetricsCollectedEvent
    from vocalis.observability.recorder import ObservedSession


def provider_info(session: ObservedSession) -> dict[str, dict[str, str | None]]:
    """Provider label and model of each component of the session's pipeline."""
    return {
        component: {"provider": provider.label, "model": provider.model_name}
        for component, provider in session.pipeline.providers().items()
    }


class MetricsFileWriter:
    """Appends the metrics of one or more sessions to a JSONL file.

    Lines are written as events happen and flushed at once, so a crash or a
    kill loses at most the line being written.

    Args:
        path: The file (created, or appended to).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        """Write one JSON line."""
        if self._file is None:
            return
        self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def attach(self, session: ObservedSession) -> None:
        """Record ``session``: a header line now, a line per turn, the summary on close."""
        self.write(
            {
                "type": "session",
                "session_id": session.id,
                "started_at": datetime.datetime.now(datetime.UTC).isoformat(),
                "agent": session.agent.name,
                "providers": provider_info(session),
            }
        )

        def on_metrics(payload: MetricsCollectedEvent) -> None:
            self.write({"type": "turn", "session_id": session.id, **payload["metrics"].to_dict()})

        def on_close(payload: CloseEvent) -> None:
            summary = payload.get("summary")
            if summary is not None:
                self.write({"type": "summary", **summary.to_dict()})

        session.on("metrics_collected", on_metrics)
        session.on("close", on_close)

    def close(self) -> None:
        """Close the file. Idempotent."""
        if self._file is not None:
            self._file.close()
            self._file = None


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics file; malformed lines are skipped.

    Raises:
        FileNotFoundError: No such file.
    """
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "type" in record:
            records.append(record)
    return records
