"""``vocalis report METRICS.jsonl``: render the latency waterfall."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("metrics_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="HTML file to write (default: next to the metrics file).",
)
@click.option("--png/--no-png", default=True, show_default=True, help="Also write a PNG (needs matplotlib).")
@click.option(
    "--long-reply",
    default=15.0,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="Mark replies with more audio than this many seconds.",
)
def report_command(metrics_file: Path, output: Path | None, png: bool, long_reply: float) -> None:
    """Render a per-turn latency waterfall (HTML, and PNG) from METRICS_FILE.

    The HTML page also has a table per turn: latencies, LLM time and tokens,
    reply audio length (long replies marked) and, when the session recorded
    them (AgentSession(..., record_text=True)), what the user and the agent
    said.
    """
    from vocalis.observability.report import render_html, render_png

    output = output or metrics_file.with_suffix(".html")
    try:
        html_path = render_html(metrics_file, output, long_reply=long_reply)
    except (ImportError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {html_path}")
    if png:
        png_path = render_png(metrics_file, output.with_suffix(".png"))
        if png_path is None:
            click.echo("no PNG: matplotlib is not installed", err=True)
        else:
            click.echo(f"wrote {png_path}")
