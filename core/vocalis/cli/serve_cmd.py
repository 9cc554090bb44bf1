"""``vocalis serve``: talk to an agent from a browser or a phone line."""

from __future__ import annotations

import asyncio
from typing import Any

import click


def agent_factory(spec: str | None) -> Any:
    """A zero-argument callable making a fresh agent per session.

    ``spec`` is ``module:factory`` or ``file.py:factory`` naming a function
    (or an Agent class) that returns an :class:`~vocalis.Agent`; None gives
    the built-in assistant.
    """
    from vocalis.cli.run_cmd import load_object
    from vocalis.session.agent import Agent
    from vocalis.session.assistant import DefaultAssistant

    if spec is None:
        return DefaultAssistant
    factory = load_object(spec)
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
    """Transport classes that accept connections (have ``add_routes``)."""
    return [e.cls for e in registry.entries("transport") if callable(getattr(e.cls, "add_routes", None))]


async def _serve(options: dict[str, Any]) -> None:
    from vocalis.pipeline.cascading import CascadingPipeline
    from vocalis.pipeline.config import EOUConfig
    from vocalis.plugin.manager import make_plugin_manager
    from vocalis.serve.http import serve
    from vocalis.serve.server import ServeOptions, SessionServer

    registry = make_plugin_manager().registry
    transports = serving_transports(registry)
    if not transports:
        raise click.ClickException(
            "no installed transport serves connections: install vocalis-webrtc (browser) "
            "or vocalis-websocket (telephony)"
        )

    def pipeline() -> CascadingPipeline:
        return CascadingPipeline(registry=registry, eou_config=EOUConfig(preemptive_generation=options["preemptive"]))

    # Load the models before listening, so the first caller does not wait.
    warm = pipeline()
    await warm.prewarm()
    await warm.aclose()

    server = SessionServer(
        agent_factory(options["agent"]),
        pipeline,
        ServeOptions(
            host=options["host"],
            port=options["port"],
            token=options["token"],
            allowed_origins=tuple(options["allow_origin"]),
            max_sessions=options["max_sessions"],
            idle_timeout=options["idle_timeout"],
            drain_timeout=options["drain_timeout"],
            max_message_bytes=options["max_message_bytes"],
            metrics_path=options["metrics_path"],
        ),
    )

    def ready(url: str) -> None:
        names = ", ".join(sorted(t.name for t in transports))
        click.echo(f"Vocalis is serving ({names}). Open {url}", err=False)
        click.echo("Ctrl-C stops it (running sessions get --drain-timeout seconds to finish).")

    await serve(server, transports, ready=ready)


@click.command("serve")
@click.option("--agent", help="module:factory or file.py:factory making the Agent (default: the built-in assistant).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="TCP port (0: any free one)."
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
    "--preemptive/--no-preemptive", default=True, show_default=True, help="Start the LLM before the turn is committed."
)
def serve_command(**options: Any) -> None:
    """Serve the agent: a web page to talk to it, and telephony WebSockets.

    Which endpoints exist depends on the transport plugins installed
    (`vocalis plugins` lists them).
    """
    asyncio.run(_serve(options))
