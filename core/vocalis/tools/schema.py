"""A tool's JSON schema, built from its signature, type hints and docstring.

A pydantic model made from the signature gives the schema (titles dropped,
``$defs`` inlined) and later validates the LLM's arguments; descriptions come
from ``Annotated`` text, ``Field(description=...)`` or the docstring's
Google-style ``Args:`` section.
"""

from __future__ import annotations

import inspect
import itertools
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, NamedTuple, get_args, get_origin

from pydantic import ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from vocalis.tools.arguments import ToolContext

_ARGS_HEADER = re.compile(r"^(\s*)(Args|Arguments|Parameters|Params)\s*:\s*$")
_ANY_HEADER = re.compile(r"^\s*(Args|Arguments|Parameters|Params|Returns?|Raises|Yields?|Examples?|Notes?)\s*:\s*$")
_ARG_ENTRY = re.compile(r"^\**(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
# Schema keys whose values are data, not sub-schemas: never rewrite inside them.
_DATA_KEYS = frozenset({"default", "enum", "const", "examples"})
_P = inspect.Parameter


class ArgumentSlot(NamedTuple):
    """Where one parameter of a tool gets its value from when the tool is called.

    Attributes:
        name: The parameter's name.
        kind: Its :class:`inspect.Parameter` kind (positional-only ones are passed by position).
        field: The arguments model's field; None marks the injected :class:`ToolContext`.
    """

    name: str
    kind: Any
    field: str | None  # the model field; None marks the injected ToolContext


def docstring_summary(doc: str) -> str:
    """The first paragraph of a docstring (stopping at a section header), on one line."""
    lines = itertools.takewhile(lambda s: s.strip() and not _ANY_HEADER.match(s), doc.splitlines())
    return " ".join(line.strip() for line in lines)


def docstring_args(doc: str) -> dict[str, str]:
    """Per-parameter descriptions from a Google-style ``Args:`` section."""
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if _ARGS_HEADER.match(line)), None)
    if start is None:
        return {}
    base = len(lines[start]) - len(lines[start].lstrip())
    out: dict[str, str] = {}
    entry_indent: int | None = None
    current: str | None = None
    for line in filter(str.strip, lines[start + 1 :]):
        indent = len(line) - len(line.lstrip())
        if indent <= base:
            break
        entry_indent = indent if entry_indent is None else entry_indent
        entry = _ARG_ENTRY.match(line.strip()) if indent == entry_indent else None
        if entry is not None:
            current = entry.group(1)
            out[current] = entry.group(2).strip()
        elif current is not None:  # a continuation line
            out[current] = f"{out[current]} {line.strip()}".strip()
    return out


def build_arguments_model(
    func: Callable[..., Any], tool: str, skip_self: bool, docs: Mapping[str, str]
) -> tuple[list[ArgumentSlot], Any]:
    """The parameters of ``func`` and the pydantic model of its LLM-facing arguments.

    Args:
        func: The tool's callable.
        tool: The tool's name, for error messages and the model's name.
        skip_self: Leave out the first parameter (a method's ``self``).
        docs: Per-parameter descriptions from the docstring.

    Raises:
        TypeError: A parameter is unannotated or variadic, or hints don't resolve.
    """
    target = getattr(func, "__func__", func)
    if not inspect.isfunction(target) and not isinstance(func, type):
        target = getattr(type(func), "__call__", target)  # a callable instance  # noqa: B004
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception as exc:
        msg = f"tool {tool!r}: cannot resolve its type hints ({exc})"
        raise TypeError(f"{msg}; define the types at module level") from exc
    sig_params = list(inspect.signature(func).parameters.values())
    sig_params = sig_params[1:] if skip_self else sig_params  # `self` is not for the LLM
    params: list[ArgumentSlot] = []
    fields: dict[str, Any] = {}
    for i, p in enumerate(sig_params):
        if p.kind in (_P.VAR_POSITIONAL, _P.VAR_KEYWORD):
            raise TypeError(f"tool {tool!r}: variadic parameter {p.name!r} is not supported")
        if p.name not in hints:
            msg = f"tool {tool!r}: parameter {p.name!r} has no type annotation"
            raise TypeError(f"{msg}; annotate it so the LLM knows what to pass")
        if _is_context(hints[p.name]):
            params.append(ArgumentSlot(p.name, p.kind, None))
            continue
        # Field names are synthetic and the real name is the alias, so any
        # parameter name works, even "_x", "json" or "model_config".
        fields[f"p{i}"] = _field(p, hints[p.name], docs.get(p.name))
        params.append(ArgumentSlot(p.name, p.kind, f"p{i}"))
    # NaN and infinity are not JSON and would reach float parameters as "nan" strings.
    config = ConfigDict(extra="forbid", allow_inf_nan=False)
    model = create_model(f"{tool}_arguments", __config__=config, **fields)
    return params, model


def _field(p: inspect.Parameter, hint: Any, doc: str | None) -> tuple[Any, FieldInfo]:
    base, meta = hint, []
    if get_origin(hint) is Annotated:
        base, *meta = get_args(hint)
    texts = [m for m in meta if isinstance(m, str)]
    meta = [m for m in meta if not isinstance(m, str)]  # pydantic ignores bare strings
    default = p.default
    if isinstance(default, FieldInfo):  # `x: int = Field(5, ge=1)` works as metadata too
        meta, default = [*meta, default], _P.empty
    kwargs: dict[str, Any] = {"alias": p.name}
    # A Field(description=...) wins; otherwise Annotated text, then the docstring.
    if not any(isinstance(m, FieldInfo) and m.description for m in meta):
        if description := (texts[0] if texts else doc):
            kwargs["description"] = description
    annotation = Annotated[(base, *meta)] if meta else base
    return annotation, Field(**kwargs) if default is _P.empty else Field(default, **kwargs)


def _is_context(hint: Any) -> bool:
    if get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    if get_origin(hint) in (typing.Union, types.UnionType):
        return any(_is_context(arg) for arg in get_args(hint))
    return isinstance(hint, type) and issubclass(hint, ToolContext)


def tidy_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's titles and inline ``$defs``, unless a model is recursive."""
    defs, props = schema.get("$defs", {}), schema.get("properties", {})
    try:
        out_props, kept_defs = _clean(props, defs, (), mapping=True), {}
    except RecursionError:  # a self-referencing model cannot be inlined
        out_props, kept_defs = _clean(props, None, (), mapping=True), _clean(defs, None, (), True)
    out = {"type": "object", "properties": out_props, "required": schema.get("required", [])}
    out["additionalProperties"] = False
    return {**out, "$defs": kept_defs} if kept_defs else out


def _clean(node: Any, defs: Mapping[str, Any] | None, seen: tuple[str, ...], mapping: bool = False) -> Any:
    if isinstance(node, list):
        return [_clean(n, defs, seen) for n in node]
    if not isinstance(node, dict):
        return node
    if mapping:  # under "properties" / "$defs" the keys are names, not keywords
        return {k: _clean(v, defs, seen) for k, v in node.items()}
    ref = node.get("$ref")
    if defs is not None and isinstance(ref, str) and ref.startswith("#/$defs/"):
        key = ref.removeprefix("#/$defs/")
        if key in seen:
            raise RecursionError(f"recursive schema {key!r}")
        # Siblings of the $ref (the field's description, default) override the def's.
        merged = {**defs[key], **{k: v for k, v in node.items() if k != "$ref"}}
        return _clean(merged, defs, (*seen, key))
    return {
        k: v if k in _DATA_KEYS else _clean(v, defs, seen, k in ("properties", "$defs"))
        for k, v in node.items()
        if not (k == "title" and isinstance(v, str))
    }
