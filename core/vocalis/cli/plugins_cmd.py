"""``vocalis plugins``: what is installed, whether it loaded and whether it is complete."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import click

from vocalis.plugin.commands import CommandEntry, collect_commands
from vocalis.plugin.manager import make_plugin_manager
from vocalis.plugin.registry import PluginRecord, ProviderEntry, base_class_for
from vocalis.providers.base import Provider, ProviderKind

COLUMNS = ("kind", "name", "aliases", "plugin", "distribution", "version", "status", "error")

# Per kind, the methods a provider class must override, as groups of which at
# least one must be: the base classes' versions raise NotImplementedError, so
# a provider that lacks them registers fine and fails on first use.
REQUIRED_METHODS: dict[ProviderKind, tuple[tuple[str, ...], ...]] = {
    ProviderKind.STT: (("recognize", "stream"),),
    ProviderKind.LLM: (("chat",),),
    ProviderKind.TTS: (("synthesize",),),
    ProviderKind.VAD: (("stream",),),
    ProviderKind.EOU: (("predict",),),
    ProviderKind.TOOLS: (("list_tools",),),
    ProviderKind.REALTIME: (("connect",),),
}


def _overrides(cls: type[Provider], base: type[Provider], method: str) -> bool:
    return getattr(cls, method, None) is not getattr(base, method, None)


def missing_methods(kind: ProviderKind, cls: type[Provider]) -> str | None:
    """What ``cls`` lacks to work as a provider of ``kind``, or None when nothing.

    Args:
        kind: The kind it is registered as.
        cls: The provider class.

    Returns:
        A sentence naming the methods to implement, or None.
    """
    base = base_class_for(kind)
    missing: list[str] = []
    for group in REQUIRED_METHODS.get(kind, ()):
        if not any(_overrides(cls, base, method) for method in group):
            names = [f"{method}()" for method in group]
            missing.append(
                f"does not implement {names[0]}" if len(names) == 1 else "implements neither " + " nor ".join(names)
            )
    if kind is ProviderKind.STT and not missing:
        # The pipeline calls stream() on a streaming STT and recognize() on any other.
        streaming = bool(getattr(cls, "streaming", False))
        needed = "stream" if streaming else "recognize"
        if not _overrides(cls, base, needed):
            hint = "streaming = True but no" if streaming else "streaming = False but no"
            return f"{cls.__qualname__} sets {hint} {needed}() is implemented: it would fail at run time"
    abstract = sorted(getattr(cls, "__abstractmethods__", ()))
    if abstract:
        missing.append("does not implement " + ", ".join(f"{method}()" for method in abstract))
    if not missing:
        return None
    return f"{cls.__qualname__} {'; '.join(missing)}: it would fail at run time"


def _provider_row(entry: ProviderEntry, base: dict[str, Any]) -> dict[str, Any]:
    problem = missing_methods(entry.kind, entry.cls)
    return {
        "kind": entry.kind.value,
        "name": entry.name,
        "aliases": list(entry.aliases),
        **base,
        "status": "incomplete" if problem else "ok",
        "error": problem,
    }


def plugin_rows(records: list[PluginRecord], commands: Iterable[CommandEntry] = ()) -> list[dict[str, Any]]:
    """One row per registered provider and command, plus one per failure.

    A plugin that failed before registering anything gets a single row with
    ``kind`` and ``name`` null; a hook that raised gets a row with its kind.
    Commands get the kind ``command``. A provider whose class lacks a method
    its kind requires (see :func:`missing_methods`) has the status
    ``incomplete`` and the missing methods as its error.
    """
    rows: list[dict[str, Any]] = []
    commands_of: dict[str, list[str]] = {}
    for command in commands:
        commands_of.setdefault(command.origin.plugin, []).append(command.name)
    for record in records:
        base = {
            "plugin": record.name,
            "distribution": record.origin.distribution,
            "version": record.origin.version,
        }
        for entry in record.providers:
            rows.append(_provider_row(entry, base))
        for name in commands_of.get(record.name, []):
            rows.append({"kind": "command", "name": name, "aliases": [], **base, "status": "ok", "error": None})
        failed_kinds = {kind.value for kind in record.kinds_failed}
        for kind in sorted(failed_kinds):
            messages = [m for m in record.errors if m.startswith(f"vocalis_register_{kind} ")]
            rows.append(
                {"kind": kind, "name": None, "aliases": [], **base, "status": "error", "error": "; ".join(messages)}
            )
        other_errors = [
            m for m in record.errors if not any(m.startswith(f"vocalis_register_{k} ") for k in failed_kinds)
        ]
        registered = record.providers or commands_of.get(record.name)
        if other_errors or (not registered and not failed_kinds):
            rows.append(
                {
                    "kind": None,
                    "name": None,
                    "aliases": [],
                    **base,
                    "status": "error" if other_errors else "ok",
                    "error": "; ".join(other_errors) or None,
                }
            )
    return rows


def render_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table with aligned columns; errors are shown last in full."""
    headers = COLUMNS[:-1]
    cells = [[_cell(row[c]) for c in headers] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row, cell in zip(rows, cells, strict=True):
        line = "  ".join(v.ljust(w) for v, w in zip(cell, widths, strict=True)).rstrip()
        if row["error"]:
            line += f"  {row['error']}"
        lines.append(line)
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, list):
        return ",".join(value) or "-"
    return "-" if value is None else str(value)


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.pass_obj
def plugins_command(settings: Any, as_json: bool) -> None:
    """List installed plugins and the providers and commands they register."""
    pm = make_plugin_manager(settings)
    root = click.get_current_context().find_root().command
    builtin = root.commands if isinstance(root, click.Group) else {}
    commands = collect_commands(pm, builtin=builtin)
    rows = plugin_rows(list(pm.records.values()), commands.values())
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(render_table(rows))
    for warning in settings_warnings(settings, pm):
        click.echo(f"warning: {warning}", err=True)


def settings_warnings(settings: Any, pm: Any) -> list[str]:
    """Settings that name plugins or providers which are not there."""
    warnings = []
    for name in settings.plugins or []:
        if name not in pm.records:
            warnings.append(f"VOCALIS_PLUGINS names {name!r}, which is not installed")
    for kind in ("stt", "llm", "tts", "vad", "eou", "transport"):
        name = settings.provider_for(kind)
        if name is not None and (kind, name) not in pm.registry:
            warnings.append(f"VOCALIS_{kind.upper()}={name!r} but no such {kind} provider is installed")
    return warnings
