"""``vocalis run module:entrypoint``: run an application's sessions as a job."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import sys
from typing import Any

import click


def load_object(spec: str) -> Any:
    """Import ``module:attribute`` (the working directory is importable).

    Raises:
        click.BadParameter: Malformed spec, missing module or attribute.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise click.BadParameter(f"expected module:attribute, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name!r}: {exc}") from None
    try:
        obj = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise click.BadParameter(f"{module_name!r} has no attribute {attr!r}") from None
    return obj


@click.command("run")
@click.argument("entrypoint")
@click.option("--metrics", "metrics_path", type=click.Path(dir_okay=False), default=None,
              help="Write every session's metrics to this JSONL file (see `vocalis report`).")
def run_command(entrypoint: str, metrics_path: str | None) -> None:
    """Run ENTRYPOINT (module:function), an `async def f(ctx: JobContext)`.

    SIGINT or SIGTERM closes every session cleanly, runs shutdown callbacks
    and flushes metrics and traces.
    """
    from vocalis.job import run_job

    function = load_object(entrypoint)
    if not inspect.iscoroutinefunction(function):
        raise click.BadParameter(f"{entrypoint} must be an async function taking a JobContext")
    ctx = asyncio.run(run_job(function, metrics_path=metrics_path))
    if ctx.shutdown_reason:
        click.echo(f"stopped: {ctx.shutdown_reason}", err=True)
