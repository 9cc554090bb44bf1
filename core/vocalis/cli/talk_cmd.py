"""``vocalis talk``: a conversation over WAV files (or one typed turn)."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import click

from vocalis.cli.run_cmd import load_object


async def _make_agent(spec: str | None) -> Any:
    from vocalis.agent import Agent
    from vocalis.assistant import DefaultAssistant

    if spec is None:
        return DefaultAssistant()
    factory = load_object(spec)
    agent = factory() if callable(factory) and not isinstance(factory, Agent) else factory
    if inspect.isawaitable(agent):
        agent = await agent
    if not isinstance(agent, Agent):
        raise click.BadParameter(f"{spec} must return a vocalis.Agent, got {type(agent).__name__}")
    return agent


def _latency_table(metrics: list[Any]) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:.0f}"

    rows = [("turn", "stt ms", "eou ms", "llm ttft ms", "tts ttfb ms", "e2e ms")]
    for m in metrics:
        rows.append((str(m.turn), ms(m.stt_latency), ms(m.eou_delay), ms(m.llm_ttft), ms(m.tts_ttfb), ms(m.e2e_latency)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


async def _talk(options: dict[str, Any]) -> int:
    from vocalis.job import run_job
    from vocalis.pipeline.cascading import CascadingPipeline
    from vocalis.turn import EOUConfig
    from vocalis.session import AgentSession
    from vocalis.transports.file import FileTransport

    agent = await _make_agent(options["agent"])
    # Local models cost nothing per request: start the LLM before the turn is committed.
    pipeline = CascadingPipeline(eou_config=EOUConfig(preemptive_generation=True))
    transport = FileTransport(
        input=options["input"], output=options["output"], realtime=not options["fast"],
        mix_input=options["mix_input"],
    )
    session = AgentSession(agent, pipeline)
    errors: list[str] = []

    @session.on("on_speech_in")
    def on_user(event: dict[str, Any]) -> None:
        if event["is_final"]:
            click.echo(f"you:   {event['text']}")

    @session.on("agent_turn")
    def on_agent(event: dict[str, Any]) -> None:
        cut = " [interrupted]" if event["interrupted"] else ""
        click.echo(f"agent: {event['text']}{cut}")

    @session.on("error")
    def on_error(event: dict[str, Any]) -> None:
        errors.append(f"{event['source']}: {event['message']}")

    async def entrypoint(ctx: Any) -> None:
        await ctx.start_session(session, transport)
        if options["text"] is not None:
            try:
                await asyncio.wait_for(session.send_text(options["text"]), options["timeout"])
            except TimeoutError:
                errors.append(f"talk: no complete reply within --timeout {options['timeout']:g} s")
        else:
            await transport.input_finished.wait()
            # Let the last turn finish: wait while the user's turn is pending or the agent works.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + options["timeout"]
            while loop.time() < deadline and (session.current_speech is not None or _turn_pending(session)):
                await asyncio.sleep(0.05)
        await session.close()

    await run_job(entrypoint, metrics_path=options["metrics"])
    if session.metrics:
        click.echo("\n" + _latency_table(session.metrics))
    if options["output"]:
        click.echo(f"\nagent audio written to {options['output']}")
    for error in errors:
        click.echo(f"error: {error}", err=True)
    return 1 if errors else 0


def _turn_pending(session: Any) -> bool:
    turns = getattr(session.pipeline, "turns", None)
    return bool(turns is not None and turns.turn_pending)


@click.command("talk")
@click.option("-i", "--input", "input_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="WAV file fed to the agent as the user's microphone.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="WAV file for the agent's audio, on the conversation timeline.")
@click.option("-t", "--text", help="One typed user turn instead of audio; the reply is printed once spoken.")
@click.option("--agent", help="module:factory returning the Agent (default: the built-in assistant).")
@click.option("--fast", is_flag=True,
              help="Feed the input as fast as possible instead of in real time (the STT then "
              "queues audio, so the latency table is not meaningful).")
@click.option("--mix-input", is_flag=True, help="Mix the user's audio into the output file.")
@click.option("--metrics", type=click.Path(dir_okay=False), help="Write per-turn metrics as JSON lines.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the last reply after the input ends (or for the --text reply).")
def talk_command(input_path: Path | None, output: Path | None, text: str | None, agent: str | None,
                 fast: bool, mix_input: bool, metrics: str | None, timeout: float) -> None:
    """Hold a conversation with an agent over WAV files, offline by default.

    Prints both sides' transcripts and a per-turn latency table. Exits with
    status 1 when a provider reported an error (the errors are printed).
    """
    if (input_path is None) == (text is None):
        raise click.UsageError("give exactly one of --input or --text")
    options = {"input": input_path, "output": output, "text": text, "agent": agent, "fast": fast,
               "mix_input": mix_input, "metrics": metrics, "timeout": timeout}
    try:
        code = asyncio.run(_talk(options))
    except (ValueError, LookupError) as exc:  # no providers installed, bad names
        raise click.ClickException(str(exc)) from None
    if code:
        raise SystemExit(code)
