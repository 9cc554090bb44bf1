"""``vocalis run module:entrypoint``: run an application's sessions as a job."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import os
import sys
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


def _import_file(path: Path) -> Any:
    name = f"vocalis_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"not a Python file: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


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
