"""``vocalis eval SCENARIOS.yaml``: run scenarios against an agent and check them."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from vocalis.cli.run_cmd import build_pipeline, load_agent_source

if TYPE_CHECKING:
    # The evaluation package, sessions and pipelines load when the command runs,
    # not with every `vocalis` command (the CLI imports each command's module).
    from vocalis.evaluation.runner import AgentFactory, AudioSides, ScenarioOutcome
    from vocalis.pipeline.base import Pipeline
    from vocalis.session.agent import Agent


def _factory(spec: str | None) -> AgentFactory:
    """Builds, per scenario, the agent (``--agent``; the built-in assistant by
    default) and its pipeline (the factory's, or the configured providers)."""
    from vocalis.pipeline.base import Pipeline
    from vocalis.pipeline.cascading import CascadingPipeline
    from vocalis.session.agent import Agent
    from vocalis.session.assistant import DefaultAssistant

    source = None if spec is None else load_agent_source(spec)
    maker = None if source is None else source.agent

    def build() -> tuple[Agent, Pipeline]:
        made: object = DefaultAssistant() if maker is None else (maker() if callable(maker) else maker)
        if inspect.isawaitable(made):
            raise click.BadParameter(f"{spec} must be a plain (not async) factory for eval")
        if isinstance(made, tuple) and len(made) == 2 and isinstance(made[1], Pipeline):
            agent, pipeline = made
        else:
            agent, pipeline = made, build_pipeline(source, CascadingPipeline)
        if not isinstance(agent, Agent):
            raise click.BadParameter(f"{spec} must return a vocalis.Agent (or an (Agent, Pipeline) pair)")
        return agent, pipeline

    return build


def _sides(voice: str | None, listener: str | None) -> AudioSides:
    """The voice and listener named on the command line (unnamed: the pipeline's own)."""
    from vocalis.evaluation.runner import AudioSides
    from vocalis.plugin.manager import make_plugin_manager
    from vocalis.providers.stt import STT
    from vocalis.providers.tts import TTS

    if voice is None and listener is None:
        return AudioSides()
    registry = make_plugin_manager().registry
    made_voice = None if voice is None else registry.create("tts", voice)
    made_listener = None if listener is None else registry.create("stt", listener)
    assert made_voice is None or isinstance(made_voice, TTS)
    assert made_listener is None or isinstance(made_listener, STT)
    return AudioSides(made_voice, made_listener)


@click.command("eval")
@click.argument(
    "scenarios_paths",
    metavar="SCENARIOS.yaml...",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--agent",
    help="path/agent.py (its make_agent, optional make_pipeline), module:factory or file.py:factory returning "
    "the Agent or an (Agent, Pipeline) pair "
    "(default: the built-in assistant on the configured providers).",
)
@click.option(
    "--mode",
    type=click.Choice(["text", "audio"]),
    default="text",
    show_default=True,
    help="text: each user turn is typed (no audio; fast). audio: the whole stack: each user line is spoken "
    "(or an audio: file played) into the session, and the agent's audio is transcribed back and checked.",
)
@click.option("--voice", metavar="TTS", help="Audio mode: the TTS that speaks the user's lines (default: the agent's).")
@click.option(
    "--listener", metavar="STT", help="Audio mode: the STT that transcribes the agent (default: the agent's)."
)
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Also write a JUnit XML report here.")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds each turn may take (models included).")
def eval_command(
    scenarios_paths: tuple[Path, ...],
    agent: str | None,
    mode: Literal["text", "audio"],
    voice: str | None,
    listener: str | None,
    junit: Path | None,
    timeout: float,
) -> None:
    """Run the scenarios of one or more SCENARIOS.yaml files against an agent and check each turn.

    Each scenario runs on a fresh session; each user turn's expectations
    (tool calls, handoffs, text, an LLM judge, latency, no interruption) are
    checked and failures are shown with what happened in the turn. Exits
    with status 1 when any scenario failed (see docs/evaluation.md).
    """
    from vocalis.clock import run_virtual
    from vocalis.evaluation.report import format_outcome, format_summary, write_junit
    from vocalis.evaluation.runner import run_scenarios
    from vocalis.evaluation.scenario import ScenarioError, load_scenarios

    try:
        scenarios = [scenario for path in scenarios_paths for scenario in load_scenarios(path)]
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None
    factory = _factory(agent)
    if mode == "text" and (voice or listener):
        raise click.UsageError("--voice and --listener are for --mode audio")

    def show(outcome: ScenarioOutcome) -> None:
        click.echo(format_outcome(outcome))

    async def run() -> list[ScenarioOutcome]:
        sides = _sides(voice, listener) if mode == "audio" else None
        try:
            return await run_scenarios(scenarios, factory, timeout=timeout, on_outcome=show, mode=mode, sides=sides)
        finally:
            for provider in (sides.voice, sides.listener) if sides else ():
                if provider is not None:
                    await provider.aclose()

    try:
        # Virtual time, real time only for sockets and pipes: waiting and
        # playback cost nothing while model work (in threads) takes its time.
        outcomes = run_virtual(
            run(),
            max_virtual_time=None,
            real_time_io=True,
        )
    except (ValueError, LookupError) as exc:  # no providers installed, bad names
        raise click.ClickException(str(exc)) from None
    click.echo(format_summary(outcomes))
    if junit is not None:
        write_junit(outcomes, junit)
        click.echo(f"JUnit XML written to {junit}")
    if not all(outcome.passed for outcome in outcomes):
        raise SystemExit(1)
