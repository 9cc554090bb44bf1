"""``vocalis run module:entrypoint``: run an application's sessions as a job.

Also how every command finds user code: :func:`load_object` for
``module:attribute``, and :func:`load_agent_source` for the agent of ``talk``,
``serve`` (and plugin commands): a single file ``path/agent.py`` defining
``make_agent`` or ``agent``, and optionally ``make_pipeline``.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click


def load_object(spec: str) -> Any:
    """Import ``module:attribute`` or ``path/to/file.py:attribute``.

    The working directory is importable, so ``examples.agent:make`` works
    from a project's root.

    Raises:
        click.BadParameter: Malformed spec, missing module or attribute.
    """
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise click.BadParameter(f"expected module:attribute, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        if module_name.endswith(".py"):
            module = _import_file(Path(module_name))
        else:
            module = importlib.import_module(module_name)
    except (ImportError, FileNotFoundError) as exc:
        raise click.BadParameter(f"cannot import {module_name!r}: {exc}") from None
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise click.BadParameter(f"{module_name!r} has no attribute {attr!r}") from None
    return obj


def _module_name(path: Path) -> str:
    return f"vocalis_user_{path.stem}"


def _import_file(path: Path) -> Any:
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"not a Python file: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


AGENT_NAMES = ("make_agent", "agent")
"""What a single-file agent defines, looked up in this order: a function (or
an Agent class) making the agent, or the agent itself."""

PIPELINE_NAME = "make_pipeline"
"""An optional function of the agent's module making a fresh pipeline per session."""


@dataclass(frozen=True)
class AgentSource:
    """An agent named on the command line, and the pipeline its module asks for.

    Attributes:
        spec: As given (``path/agent.py``, ``file.py:factory``, ``module:factory``).
        agent: A function or Agent class making the agent, or an Agent instance.
        make_pipeline: The module's ``make_pipeline``, if it defines one.
    """

    spec: str
    agent: Any
    make_pipeline: Callable[[], Any] | None


def load_agent_source(spec: str) -> AgentSource:
    """Find the agent (and optional pipeline) that ``spec`` names.

    ``path/agent.py`` alone uses the file's ``make_agent`` or ``agent``;
    ``file.py:name`` and ``module:name`` name the factory. Either way the
    module's ``make_pipeline``, when present, makes the pipeline.

    Raises:
        click.BadParameter: A missing file or module, or nothing to make an agent from.
    """
    if spec.endswith(".py"):
        path = Path(spec)
        if not path.is_file():
            raise click.BadParameter(f"no such file: {spec}", param_hint="AGENT")
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = _import_file(path)
        except ImportError as exc:
            raise click.BadParameter(f"cannot import {spec}: {exc}", param_hint="AGENT") from None
        found = next((name for name in AGENT_NAMES if hasattr(module, name)), None)
        if found is None:
            raise click.BadParameter(
                f"{spec} defines no agent: add `def make_agent() -> Agent` (or `agent = YourAgent`), "
                "or name the factory as file.py:factory",
                param_hint="AGENT",
            )
        agent = getattr(module, found)
    else:
        agent = load_object(spec)
        module_name = spec.rpartition(":")[0]
        if module_name.endswith(".py"):
            module_name = _module_name(Path(module_name))
        module = sys.modules.get(module_name)
    make_pipeline = getattr(module, PIPELINE_NAME, None) if module is not None else None
    if make_pipeline is not None and not callable(make_pipeline):
        raise click.BadParameter(f"{spec}: {PIPELINE_NAME} must be a function returning a pipeline")
    return AgentSource(spec, agent, make_pipeline)


def build_pipeline(source: AgentSource | None, default: Callable[[], Any]) -> Any:
    """A new pipeline: the agent module's ``make_pipeline()``, else ``default()``.

    Raises:
        click.ClickException: ``make_pipeline`` returned something else than a pipeline.
    """
    from vocalis.pipeline.base import Pipeline

    if source is None or source.make_pipeline is None:
        return default()
    pipeline = source.make_pipeline()
    if not isinstance(pipeline, Pipeline):
        raise click.ClickException(
            f"{source.spec}: {PIPELINE_NAME}() must return a CascadingPipeline or RealTimePipeline, "
            f"got {type(pipeline).__name__}"
        )
    return pipeline


@click.command("run")
@click.argument("entrypoint")
@click.option(
    "--metrics",
    "metrics_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write every session's metrics to this JSONL file (see `vocalis report`).",
)
def run_command(entrypoint: str, metrics_path: str | None) -> None:
    """Run ENTRYPOINT (module:function), an `async def f(ctx: JobContext)`.

    SIGINT or SIGTERM closes every session cleanly, runs shutdown callbacks
    and flushes metrics and traces.
    """
    from vocalis.session.job import run_job

    function = load_object(entrypoint)
    if not inspect.iscoroutinefunction(function):
        raise click.BadParameter(f"{entrypoint} must be an async function taking a JobContext")
    ctx = asyncio.run(run_job(function, metrics_path=metrics_path))
    if ctx.shutdown_reason:
        click.echo(f"stopped: {ctx.shutdown_reason}", err=True)
