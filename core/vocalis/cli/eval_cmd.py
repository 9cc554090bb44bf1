"""``vocalis eval SCENARIOS.yaml``: run scenarios against an agent and check them."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING

import click

from vocalis.cli.run_cmd import build_pipeline, load_agent_source

if TYPE_CHECKING:
    # The evaluation package, sessions and pipelines load when the command runs,
    # not with every `vocalis` command (the CLI imports each command's module).
    from vocalis.evaluation.runner import AgentFactory, ScenarioOutcome
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


@click.command("eval")
@click.argument(
    "scenarios_path", metavar="SCENARIOS.yaml", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--agent",
    help="path/agent.py (its make_agent, optional make_pipeline), module:factory or file.py:factory returning "
    "the Agent or an (Agent, Pipeline) pair "
    "(default: the built-in assistant on the configured providers).",
)
@click.option(
    "--mode",
    type=click.Choice(["text"]),
    default="text",
    show_default=True,
    help="text: each user turn is typed (no audio; fast).",
)
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Also write a JUnit XML report here.")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds each turn may take (models included).")
def eval_command(scenarios_path: Path, agent: str | None, mode: str, junit: Path | None, timeout: float) -> None:
    """Run the scenarios in SCENARIOS.yaml against an agent and check each turn.

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
        scenarios = load_scenarios(scenarios_path)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None
    factory = _factory(agent)

    def show(outcome: ScenarioOutcome) -> None:
        click.echo(format_outcome(outcome))

    try:
        # Virtual time, real time only for sockets and pipes: waiting and
        # playback cost nothing while model work (in threads) takes its time.
        outcomes = run_virtual(
            run_scenarios(scenarios, factory, timeout=timeout, on_outcome=show),
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
