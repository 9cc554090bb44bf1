"""What a serving process is told: limits, security, load, resume.

:class:`ServeOptions` is what ``vocalis serve``'s flags fill in;
:class:`AdmissionError` is how a refused session is reported to the
transport that asked (with the HTTP status and ``Retry-After`` to answer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vocalis.providers.session_store import SessionStore


class AdmissionError(Exception):
    """A session was refused.

    Attributes:
        status: The HTTP status to answer with.
        retry_after: Seconds to tell the client to wait (``Retry-After``), 0 for none.
        reason: A short word for metrics: ``full``, ``draining``, ``overloaded``...
    """

    def __init__(self, message: str, status: int, *, retry_after: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.reason = reason or "refused"


@dataclass
class ServeOptions:
    """Limits and security of a serving process.

    Attributes:
        host: Interface to listen on (loopback by default: nothing outside
            the machine can connect unless asked for).
        port: TCP port.
        token: Access token every request must carry (``?token=``, an
            ``Authorization: Bearer`` header, or the transport's own way);
            generated when None.
        allowed_origins: Browser origins allowed besides the page's own
            (``https://app.example.com``); ``*`` allows any.
        max_sessions: Sessions at once; more are refused with 503.
        idle_timeout: Seconds with nobody active before a session is
            closed: the clock runs only while the user is not speaking and
            the agent is neither thinking (LLM, tools) nor speaking.
        drain_timeout: Seconds running sessions get to finish on shutdown.
        max_message_bytes: Largest HTTP body or WebSocket message accepted.
        metrics_path: Write every session's metrics (a header line, one
            line per turn, the summary) to this JSONL file; see
            ``vocalis report``.
        workers: Processes serving the port (set by ``--workers``; each
            process's CPU share for the load figure is cores / workers).
        max_load: Readiness fails (and sessions are refused) at this load
            (CPU over 2.5 s by default, 1.0 = this process's cores busy); 0: off.
        max_loop_lag: Readiness fails when the event loop wakes up this many
            seconds late; 0: off.
        load_function: Replaces the load figure (CPU by default): returns
            1.0 for "full" (e.g. from GPU use or memory).
        max_pending_connections: Connections at once that have not sent a
            request yet (idle or slow sockets).
        max_connections_per_client: Connections at once from one address;
            0 turns the cap off (behind a proxy, which limits per source).
        max_connections: Connections at once in all; 0: just under the
            process's file descriptor limit.
        header_timeout: Seconds a new connection gets to send its request's headers.
        max_errors: Unrecoverable provider errors after which a session is
            closed (reason ``errors``); 0: never.
        error_message: Spoken when a turn fails before the agent said
            anything; None stays silent.
        store: Where conversations are kept for resume (None: this process only).
        resume_grace: Seconds a closed or dropped session stays resumable.
        record_text: Keep what was said in each turn's metrics (the
            ``--metrics`` file, ``vocalis report``); off for privacy.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = field(default=None, repr=False)  # a credential: never in reprs
    allowed_origins: tuple[str, ...] = ()
    max_sessions: int = 20
    idle_timeout: float = 300.0
    drain_timeout: float = 30.0
    max_message_bytes: int = 1 << 20
    metrics_path: str | Path | None = None
    workers: int = 1
    max_load: float = 0.9
    max_loop_lag: float = 0.5
    load_function: Callable[[], float] | None = None
    max_pending_connections: int = 128
    max_connections_per_client: int = 64
    max_connections: int = 0
    header_timeout: float = 10.0
    max_errors: int = 3
    error_message: str | None = "Sorry, something went wrong on my side."
    store: SessionStore | None = None
    resume_grace: float = 120.0
    record_text: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
