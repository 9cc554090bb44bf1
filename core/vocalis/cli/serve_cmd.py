"""``vocalis serve``: talk to an agent from a browser or a phone line."""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import socket
from typing import Any

import click

from vocalis.cli.run_cmd import AgentSource, build_pipeline, load_agent_source

DEFAULT_PORT = 8765
"""``serve``'s port: not 8080, which local LLM servers (llama.cpp's) take."""


def agent_factory(spec: str | AgentSource | None) -> Any:
    """A zero-argument callable making a fresh agent per session.

    ``spec`` is ``path/agent.py`` (its ``make_agent`` or ``agent``),
    ``module:factory`` or ``file.py:factory`` naming a function (or an Agent
    class) that returns an :class:`~vocalis.Agent`; None gives the built-in
    assistant.
    """
    from vocalis.session.agent import Agent
    from vocalis.session.assistant import DefaultAssistant

    if spec is None:
        return DefaultAssistant
    source = spec if isinstance(spec, AgentSource) else load_agent_source(spec)
    spec, factory = source.spec, source.agent
    if isinstance(factory, Agent):
        raise click.BadParameter(
            f"{spec} is an Agent instance; serving needs a new agent per session, so name a "
            "function or class that makes one",
            param_hint="--agent",
        )
    if not callable(factory):
        raise click.BadParameter(f"{spec} is not callable", param_hint="--agent")
    return factory


def serving_transports(registry: Any) -> list[Any]:
    """Transport classes that accept connections (:func:`vocalis.serve.plugins.serving_transports`).

    Imported when serving starts: the serving package loads sessions and
    pipelines, which every other `vocalis` command would pay for at start-up.
    """
    from vocalis.serve.plugins import serving_transports as find

    return list(find(registry))


def _port_in_use(host: str, port: int) -> str:
    return f"port {port} on {host} is in use: stop what listens there, or pick another with --port"


def check_port_free(host: str, port: int) -> None:
    """Fail at once, before any model loads, when ``host:port`` cannot be bound.

    Binds as the server will (``SO_REUSEADDR``) and lets go at once.

    Raises:
        click.ClickException: The port is in use (or the address is not this machine's).
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(_port_in_use(host, port)) from None
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


async def _serve(options: dict[str, Any]) -> None:
    from vocalis.pipeline.cascading import CascadingPipeline
    from vocalis.pipeline.config import EOUConfig
    from vocalis.plugin.manager import make_plugin_manager
    from vocalis.serve.http import serve
    from vocalis.serve.plugins import session_store
    from vocalis.serve.server import ServeOptions, SessionServer
    from vocalis.serve.workers import PORT_ENV, is_worker, tell_ready

    if not is_worker():  # first of all; workers share a port their supervisor checked
        check_port_free(options["host"], options["port"])
    registry = make_plugin_manager().registry
    transports = serving_transports(registry)
    if not transports:
        raise click.ClickException(
            "no installed transport serves connections: install vocalis-webrtc (browser) "
            "or vocalis-websocket (telephony)"
        )
    try:
        store = session_store(options["store"], registry)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--store") from None
    worker = is_worker()
    source: AgentSource | None = options["source"]

    def default_pipeline() -> CascadingPipeline:
        return CascadingPipeline(registry=registry, eou_config=EOUConfig(preemptive_generation=options["preemptive"]))

    def pipeline() -> Any:
        return build_pipeline(source, default_pipeline)

    # Load the models before listening, so the first caller does not wait.
    warm = pipeline()
    await warm.prewarm()
    await warm.aclose()
    await store.prewarm()

    server = SessionServer(
        agent_factory(source),
        pipeline,
        ServeOptions(
            host=options["host"],
            port=int(os.environ[PORT_ENV]) if worker else options["port"],
            token=options["token"],
            allowed_origins=tuple(options["allow_origin"]),
            max_sessions=options["max_sessions"],
            idle_timeout=options["idle_timeout"],
            drain_timeout=options["drain_timeout"],
            max_message_bytes=options["max_message_bytes"],
            metrics_path=_worker_path(options["metrics_path"]) if worker else options["metrics_path"],
            workers=options["workers"],
            max_load=options["max_load"],
            max_loop_lag=options["max_loop_lag"],
            max_pending_connections=options["max_pending_connections"],
            max_connections_per_client=options["max_connections_per_client"],
            header_timeout=options["header_timeout"],
            max_errors=options["max_errors"],
            error_message=options["error_message"] or None,
            store=store,
            resume_grace=options["resume_grace"],
            record_text=options["record_text"],
        ),
    )

    def ready(url: str) -> None:
        if worker:
            tell_ready()
            return
        names = ", ".join(sorted(t.name for t in transports))
        click.echo(f"Vocalis is serving ({names}). Open {url}", err=False)
        click.echo("Ctrl-C stops it (running sessions get --drain-timeout seconds to finish).")

    # The models and imports live as long as the process: move them out of the
    # collector's sight, so a full collection walks only what sessions make
    # (P6 in docs/benchmarks.md: the 200-250 ms full collections of a worker are gone).
    gc.collect()
    gc.freeze()
    try:
        await serve(server, transports, ready=ready, reuse_port=worker)
    except OSError as exc:  # taken between the check and the bind
        if exc.errno != errno.EADDRINUSE:
            raise
        raise click.ClickException(_port_in_use(options["host"], options["port"])) from None


def _worker_path(path: str | None) -> str | None:
    """Each worker writes its own metrics file: ``metrics.jsonl`` → ``metrics.w2.jsonl``."""
    from vocalis.serve.workers import WORKER_ENV

    if path is None:
        return None
    stem, dot, ext = path.rpartition(".")
    index = os.environ[WORKER_ENV]
    return f"{stem}.w{index}.{ext}" if dot else f"{path}.w{index}"


@click.command("serve")
@click.argument("agent_file", metavar="[AGENT.py]", required=False)
@click.option(
    "--agent",
    help="path/agent.py, file.py:factory or module:factory making the Agent (default: the built-in assistant).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535), help="TCP port (0: any free one)."
)
@click.option(
    "--token", envvar="VOCALIS_SERVE_TOKEN", help="Access token (default: a random one, printed with the URL)."
)
@click.option("--allow-origin", multiple=True, help="Another browser origin allowed to connect; repeatable.")
@click.option("--max-sessions", default=20, show_default=True, type=click.IntRange(1), help="Sessions at once.")
@click.option(
    "--idle-timeout",
    default=300.0,
    show_default=True,
    type=click.FloatRange(1),
    help="Seconds of silence before a session is closed.",
)
@click.option(
    "--drain-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds running sessions get on shutdown.",
)
@click.option(
    "--max-message-bytes",
    default=1 << 20,
    show_default=True,
    type=click.IntRange(1024),
    help="Largest HTTP body or WebSocket message accepted.",
)
@click.option(
    "--metrics",
    "metrics_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write every session's metrics to this JSONL file (see `vocalis report`); flushed on shutdown.",
)
@click.option(
    "--record-text", is_flag=True, help="Keep what was said in the metrics (transcripts in `vocalis report`)."
)
@click.option(
    "--preemptive/--no-preemptive", default=True, show_default=True, help="Start the LLM before the turn is committed."
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Processes serving the port (one per core; each loads the models once).",
)
@click.option(
    "--store",
    default="memory://",
    show_default=True,
    envvar="VOCALIS_SERVE_STORE",
    help="Where conversations are kept for resume: memory:// (this process) or redis://host:6379/0 (vocalis-redis).",
)
@click.option(
    "--resume-grace",
    default=120.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Seconds a dropped session can be resumed (the client reconnects with its session id).",
)
@click.option(
    "--max-load",
    default=0.9,
    show_default=True,
    type=click.FloatRange(0),
    help="Refuse sessions (and fail /readyz) at this CPU load, averaged over 2.5 s (1.0 = the worker's cores); 0: off.",
)
@click.option(
    "--max-loop-lag",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0),
    help="Refuse sessions (and fail /readyz) when the event loop is this many seconds late; 0: off.",
)
@click.option(
    "--max-pending-connections",
    default=128,
    show_default=True,
    type=click.IntRange(1),
    help="Connections at once that have not sent a request yet.",
)
@click.option(
    "--max-connections-per-client",
    default=64,
    show_default=True,
    type=click.IntRange(0),
    help="Connections at once from one address; 0: off (behind a proxy that limits per source).",
)
@click.option(
    "--header-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Seconds a new connection gets to send its request.",
)
@click.option(
    "--max-errors",
    default=3,
    show_default=True,
    type=click.IntRange(0),
    help="Close a session after this many unrecoverable provider errors; 0: never.",
)
@click.option(
    "--error-message",
    default="Sorry, something went wrong on my side.",
    show_default=True,
    help="Spoken when a turn fails before the agent said anything; empty: stay silent.",
)
def serve_command(agent_file: str | None, **options: Any) -> None:
    """Serve the agent: a web page to talk to it, and telephony WebSockets.

    AGENT.py is a file defining `make_agent()` (or `agent`, an Agent class)
    and optionally `make_pipeline()`, called once per session; without it
    (and without --agent) the built-in assistant answers.

    Which endpoints exist depends on the transport plugins installed
    (`vocalis plugins` lists them). Endpoints for load balancers and
    monitoring: /livez, /readyz, /metrics.
    """
    from vocalis.serve.workers import Supervisor, is_worker

    if agent_file is not None:
        if options["agent"] is not None:
            raise click.UsageError("give the agent either as AGENT.py or with --agent, not both")
        options["agent"] = agent_file
    # A wrong name fails now, not after the models load.
    options["source"] = load_agent_source(options["agent"]) if options["agent"] is not None else None
    if options["workers"] > 1 and not is_worker():
        check_port_free(options["host"], options["port"])
        if options["store"].startswith("memory"):
            click.echo(
                "note: with several workers, --store memory:// resumes a session only on the worker that ran it; "
                "use redis:// to resume on any",
                err=True,
            )
        raise SystemExit(Supervisor(options["workers"], options["host"], options["port"], options["token"]).run())
    asyncio.run(_serve(options))
