"""``vocalis serve`` with fake providers: for serving tests and the P6 benchmark.

``python -m vocalis.testing.serve_fakes --port 8081 --workers 3 --token T``
runs the real serving stack (HTTP edge, admission, readiness, metrics,
resume, workers) with the scripted fakes of :mod:`vocalis.testing.fakes`
instead of models, so it starts in a second and costs no model CPU.

The fake agent answers every user turn with ``heard: <every user message so
far, joined by " | ">`` — so a client can tell, after reconnecting to
another worker, whether the conversation came along. The fake recogniser
hears each burst of speech (a tone: :func:`vocalis.testing.fakes.tone`) as
``"hello"``. Transports come from the installed plugins, as for ``vocalis serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from vocalis.chat import ChatRole

if TYPE_CHECKING:
    from vocalis.chat import ChatContext
    from vocalis.pipeline.cascading import CascadingPipeline
    from vocalis.providers.llm import ToolSpec
    from vocalis.session.agent import Agent


def echo_history(chat_ctx: ChatContext, tools: object) -> str:
    """The fake agent's answer: every user message of the conversation so far."""
    said = [m.content for m in chat_ctx.messages(ChatRole.USER)]
    return "heard: " + " | ".join(said)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vocalis.testing.serve_fakes", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--token", default=os.environ.get("VOCALIS_SERVE_TOKEN"))
    parser.add_argument("--store", default="memory://")
    parser.add_argument("--max-sessions", type=int, default=1000)
    parser.add_argument("--drain-timeout", type=float, default=30.0)
    parser.add_argument("--resume-grace", type=float, default=120.0)
    parser.add_argument("--max-load", type=float, default=0.0)
    parser.add_argument("--max-loop-lag", type=float, default=0.0)
    parser.add_argument("--max-connections-per-client", type=int, default=0)
    parser.add_argument("--ttft", type=float, default=0.05, help="The fake LLM's time to first token.")
    return parser


async def _run(args: argparse.Namespace) -> None:
    from vocalis.pipeline.cascading import CascadingPipeline
    from vocalis.plugin.manager import make_plugin_manager
    from vocalis.serve.http import serve
    from vocalis.serve.plugins import serving_transports, session_store
    from vocalis.serve.server import ServeOptions, SessionServer
    from vocalis.serve.workers import PORT_ENV, is_worker, tell_ready
    from vocalis.session.agent import Agent
    from vocalis.testing.fakes import FakeLLM, FakeResponse, FakeSTT, FakeTTS, FakeVAD

    registry = make_plugin_manager().registry
    worker = is_worker()

    def agent() -> Agent:
        return Agent("You are a test agent.")

    def pipeline() -> CascadingPipeline:
        def answer(chat_ctx: ChatContext, tools: Sequence[ToolSpec]) -> FakeResponse | str:
            return FakeResponse(text=echo_history(chat_ctx, tools), ttft=args.ttft)

        return CascadingPipeline(
            stt=FakeSTT(["hello"] * 10_000),
            llm=FakeLLM([answer]),
            tts=FakeTTS(seconds_per_char=0.01),
            vad=FakeVAD(),
            turn_detector=None,
        )

    server = SessionServer(
        agent,
        pipeline,
        ServeOptions(
            host=args.host,
            port=int(os.environ[PORT_ENV]) if worker else args.port,
            token=args.token,
            max_sessions=args.max_sessions,
            drain_timeout=args.drain_timeout,
            workers=args.workers,
            max_load=args.max_load,
            max_loop_lag=args.max_loop_lag,
            max_connections_per_client=args.max_connections_per_client,
            store=session_store(args.store, registry),
            resume_grace=args.resume_grace,
            error_message=None,
        ),
    )

    def ready(url: str) -> None:
        tell_ready()
        print(f"serving {url}", flush=True)

    gc.collect()
    gc.freeze()  # as `vocalis serve` does once everything long-lived is loaded
    await serve(server, serving_transports(registry), ready=ready, reuse_port=worker)


def main(argv: list[str] | None = None) -> int:
    """Run the fake server (or its workers); returns the exit status."""
    from vocalis.log import configure_logging
    from vocalis.serve.workers import Supervisor, is_worker

    args = _parser().parse_args(argv)
    configure_logging(os.environ.get("VOCALIS_LOG_LEVEL", "INFO"))  # a program, like the CLI: it logs
    if args.workers > 1 and not is_worker():
        command = [sys.executable, "-m", "vocalis.testing.serve_fakes", *(argv if argv is not None else sys.argv[1:])]
        return Supervisor(args.workers, args.host, args.port, args.token, command=command).run()
    asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
