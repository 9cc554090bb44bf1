"""Function tools: typed Python callables an LLM can call.

The JSON schema comes from the signature via a pydantic model, and the same
model validates and converts the LLM's arguments, so a tool body only sees
well-typed values. Every parameter needs a type annotation (``TypeError`` at
decoration time otherwise): an untyped one gives the LLM no guidance.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import itertools
import json
import re
import reprlib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple, get_args, get_origin, overload

from pydantic import ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

_NAME_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_ARGS_HEADER = re.compile(r"^(\s*)(Args|Arguments|Parameters|Params)\s*:\s*$")
_ANY_HEADER = re.compile(
    r"^\s*(Args|Arguments|Parameters|Params|Returns?|Raises|Yields?|Examples?|Notes?)\s*:\s*$"
)
_ARG_ENTRY = re.compile(r"^\**(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
# Schema keys whose values are data, not sub-schemas: never rewrite inside them.
_DATA_KEYS = frozenset({"default", "enum", "const", "examples"})
_JSON_TYPES = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
_P = inspect.Parameter


class ToolError(Exception):
    """Raise from a tool to hand the LLM an error message instead of a result."""


class ToolArgumentsError(ToolError):
    """The LLM's arguments were malformed JSON or violated the tool's schema."""


@dataclass
class ToolContext:
    """Call details, injected into a parameter annotated with ``ToolContext``.

    Such a parameter (any name) is not part of the tool's JSON schema.

    Attributes:
        call_id: The LLM's id for this call.
        tool_name: The tool being called.
        session: The running session, if any.
        agent: The agent that owns the tool, if any.
    """

    call_id: str
    tool_name: str
    session: Any = None
    agent: Any = None


class _Param(NamedTuple):
    name: str
    kind: Any
    field: str | None  # the model field; None marks the injected ToolContext


class FunctionTool:
    """A callable exposed to the LLM, with its name, description and schema.

    Usually made with :func:`function_tool`. On a method it is a descriptor:
    ``instance.method`` is the tool bound to ``instance``, and calling it
    directly still runs the plain method (no JSON, no validation).

    Args:
        func: A function (sync or async), method, or other callable.
        name: The tool name; defaults to the function's name.
        description: Defaults to the docstring's first paragraph.

    Raises:
        ValueError: The name does not match ``^[a-zA-Z0-9_-]{1,64}$``.
        TypeError: A parameter is unannotated or variadic, or hints don't resolve.
    """

    name: str
    description: str
    parameters: dict[str, Any]

    def __init__(
        self, func: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> None:
        if isinstance(func, staticmethod | classmethod) or not callable(func):
            raise TypeError(f"@function_tool needs a plain function or method, got {func!r}")
        functools.update_wrapper(self, func)  # first, so func.__dict__ can't clobber our fields
        self._func = self._target = func
        self._instance: Any = None
        self._is_method = _defined_in_class(func)
        self.name = name if name is not None else getattr(func, "__name__", type(func).__name__)
        if not _NAME_RE.fullmatch(self.name):
            raise ValueError(
                f"invalid tool name {self.name!r}: use 1-64 letters, digits, '_' or '-' "
                "(pass name=... to @function_tool)"
            )
        doc = inspect.cleandoc(getattr(func, "__doc__", None) or "")
        self.description = description if description is not None else _summary(doc)
        self._params, self._model = _build_model(func, self.name, self._is_method, _arg_docs(doc))
        self.parameters = _tidy_schema(self._model.model_json_schema())

    def __repr__(self) -> str:
        bound = f" bound to {self._instance!r}" if self._instance is not None else ""
        return f"<FunctionTool {self.name!r}{bound}>"

    def __get__(self, instance: Any, owner: type | None = None) -> FunctionTool:
        return self if instance is None or not self._is_method else self.bind(instance)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target(*args, **kwargs)

    def bind(self, instance: Any) -> FunctionTool:
        """A copy of this method tool bound to ``instance``.

        Raises:
            TypeError: The tool wraps a plain function, not a method.
        """
        if not self._is_method:
            raise TypeError(f"tool {self.name!r} is not a method; there is nothing to bind")
        bound = copy.copy(self)
        bound._instance = instance
        bound._target = self._func.__get__(instance, type(instance))
        return bound

    def to_openai_schema(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry: ``{"type": "function", "function": {...}}``."""
        params = copy.deepcopy(self.parameters)
        function = {"name": self.name, "description": self.description, "parameters": params}
        return {"type": "function", "function": function}

    def to_anthropic_schema(self) -> dict[str, Any]:
        """The Anthropic ``tools`` entry: ``{"name", "description", "input_schema"}``."""
        params = copy.deepcopy(self.parameters)
        return {"name": self.name, "description": self.description, "input_schema": params}

    async def invoke(
        self, arguments: str | Mapping[str, Any] | None, *, context: ToolContext | None = None
    ) -> Any:
        """Validate the LLM's arguments and call the tool.

        Sync tools run in a worker thread so a blocking tool never stalls the
        event loop; async tools are awaited.

        Args:
            arguments: Raw JSON text from the LLM (``""``, ``"null"`` and None
                mean no arguments), or an already-parsed mapping.
            context: Injected into a ``ToolContext`` parameter; a minimal one
                is made up when omitted.

        Raises:
            ToolArgumentsError: Malformed JSON, not an object, or schema violation.
            ToolError: Raised by the tool itself; other exceptions propagate too.
        """
        if self._is_method and self._instance is None:
            raise TypeError(f"tool {self.name!r} is a method; bind it to an instance first")
        try:
            validated = self._model.model_validate(self._parse(arguments))
        except ValidationError as exc:
            msg = f"Invalid arguments for tool {self.name!r}: {_summarize(exc)}"
            raise ToolArgumentsError(msg) from exc
        ctx = context if context is not None else ToolContext("", self.name)
        kwargs = {p.name: getattr(validated, p.field) if p.field else ctx for p in self._params}
        args = [kwargs.pop(p.name) for p in self._params if p.kind is _P.POSITIONAL_ONLY]
        if inspect.iscoroutinefunction(self._target):
            return await self._target(*args, **kwargs)
        result = await asyncio.to_thread(self._target, *args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    def _parse(self, arguments: str | Mapping[str, Any] | None) -> dict[str, Any]:
        return parse_tool_arguments(arguments, tool=self.name)


@overload
def function_tool(
    func: Callable[..., Any], *, name: str | None = ..., description: str | None = ...
) -> FunctionTool: ...
@overload
def function_tool(
    func: None = None, *, name: str | None = ..., description: str | None = ...
) -> Callable[[Callable[..., Any]], FunctionTool]: ...
def function_tool(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Turn a function or method into a :class:`FunctionTool`.

    Usable bare (``@function_tool``) or with options (``@function_tool(name="x")``).

    Args:
        func: The function to wrap.
        name: The tool name; defaults to the function's name.
        description: Defaults to the docstring's first paragraph.
    """

    def wrap(f: Callable[..., Any]) -> FunctionTool:
        f = f._func if isinstance(f, FunctionTool) else f
        return FunctionTool(f, name=name, description=description)

    return wrap if func is None else wrap(func)


def as_function_tool(obj: Callable[..., Any] | FunctionTool) -> FunctionTool:
    """``obj`` itself if it is a tool, else a new tool made from the callable."""
    return obj if isinstance(obj, FunctionTool) else FunctionTool(obj)


def find_function_tools(obj: object) -> list[FunctionTool]:
    """The tools defined on ``obj``'s class, bound to ``obj``, in definition order.

    Base-class tools come first; an override keeps its base's position, and an
    override that is not a tool removes it.

    Raises:
        ValueError: Two tools share a name.
    """
    cls = type(obj)
    names = dict.fromkeys(attr for klass in reversed(cls.__mro__) for attr in vars(klass))
    tools: list[FunctionTool] = []
    for attr in names:
        # Resolve by MRO without triggering descriptors, then bind explicitly.
        value = next(vars(k)[attr] for k in cls.__mro__ if attr in vars(k))
        if not isinstance(value, FunctionTool):
            continue
        if any(t.name == value.name for t in tools):
            raise ValueError(f"{cls.__name__} defines more than one tool named {value.name!r}")
        tools.append(value.__get__(obj, cls))
    return tools


def parse_tool_arguments(arguments: str | bytes | Mapping[str, Any] | None, *, tool: str) -> dict[str, Any]:
    """Parse a model's tool-call arguments strictly, for any kind of tool.

    Standard JSON only: ``NaN``/``Infinity``, numbers out of range, repeated
    keys and absurd nesting are refused rather than passed on. Empty text,
    ``"null"`` and None mean no arguments.

    Args:
        arguments: JSON text (str or UTF-8 bytes) or an already-parsed mapping.
        tool: The tool's name, for the error message.

    Raises:
        ToolArgumentsError: The arguments are not a JSON object, with the reason.
    """
    if isinstance(arguments, Mapping):
        return dict(arguments)
    prefix = f"Invalid arguments for tool {tool!r}"
    if isinstance(arguments, bytes | bytearray):
        try:
            arguments = arguments.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolArgumentsError(f"{prefix}: not UTF-8 text") from None
    if arguments is None:
        return {}
    if not isinstance(arguments, str):
        kind = type(arguments).__name__
        raise ToolArgumentsError(f"{prefix}: expected JSON text or a mapping, got {kind}")
    if not arguments.strip():
        return {}
    try:
        value = json.loads(
            arguments,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as exc:
        where = f"at line {exc.lineno} column {exc.colno}"
        raise ToolArgumentsError(f"{prefix}: not valid JSON ({exc.msg} {where})") from exc
    except _StrictJSONError as exc:
        raise ToolArgumentsError(f"{prefix}: {exc}") from None
    except RecursionError:
        raise ToolArgumentsError(f"{prefix}: JSON nested too deeply") from None
    if value is None:  # some models send "null" for a call without arguments
        return {}
    if not isinstance(value, dict):
        kind = _JSON_TYPES.get(type(value), type(value).__name__)
        raise ToolArgumentsError(f"{prefix}: expected a JSON object, got a JSON {kind}")
    return value


class _StrictJSONError(ValueError):
    """JSON that Python's parser takes but the JSON standard (or sense) does not."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key is ambiguous: refuse it rather than silently keep the last.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _StrictJSONError(f"duplicate key {_short(key)} in the JSON object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise _StrictJSONError(f"{name} is not a valid JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _StrictJSONError(f"the number {_short(text)} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > 400:  # int() of thousands of digits is slow, and no tool needs it
        raise _StrictJSONError(f"an integer of {len(text)} digits is too long")
    return int(text)


def _short(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters: arguments from a model may be huge."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _defined_in_class(func: Callable[..., Any]) -> bool:
    # At decoration time the class does not exist yet; a function whose
    # qualname is nested in something other than "<locals>" sits in a class body.
    parts = getattr(func, "__qualname__", "").split(".")
    return inspect.isfunction(func) and len(parts) >= 2 and parts[-2] != "<locals>"


def _summary(doc: str) -> str:
    lines = itertools.takewhile(lambda s: s.strip() and not _ANY_HEADER.match(s), doc.splitlines())
    return " ".join(line.strip() for line in lines)


def _arg_docs(doc: str) -> dict[str, str]:
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


def _build_model(
    func: Callable[..., Any], tool: str, skip_self: bool, docs: Mapping[str, str]
) -> tuple[list[_Param], Any]:
    target = getattr(func, "__func__", func)
    if not inspect.isfunction(target) and not isinstance(func, type):
        target = getattr(type(func), "__call__", target)  # a callable instance
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception as exc:
        msg = f"tool {tool!r}: cannot resolve its type hints ({exc})"
        raise TypeError(f"{msg}; define the types at module level") from exc
    sig_params = list(inspect.signature(func).parameters.values())
    sig_params = sig_params[1:] if skip_self else sig_params  # `self` is not for the LLM
    params: list[_Param] = []
    fields: dict[str, Any] = {}
    for i, p in enumerate(sig_params):
        if p.kind in (_P.VAR_POSITIONAL, _P.VAR_KEYWORD):
            raise TypeError(f"tool {tool!r}: variadic parameter {p.name!r} is not supported")
        if p.name not in hints:
            msg = f"tool {tool!r}: parameter {p.name!r} has no type annotation"
            raise TypeError(f"{msg}; annotate it so the LLM knows what to pass")
        if _is_context(hints[p.name]):
            params.append(_Param(p.name, p.kind, None))
            continue
        # Field names are synthetic and the real name is the alias, so any
        # parameter name works, even "_x", "json" or "model_config".
        fields[f"p{i}"] = _field(p, hints[p.name], docs.get(p.name))
        params.append(_Param(p.name, p.kind, f"p{i}"))
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


def _tidy_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's titles and inline ``$defs``, unless a model is recursive."""
    defs, props = schema.get("$defs", {}), schema.get("properties", {})
    try:
        out_props, kept_defs = _clean(props, defs, (), mapping=True), {}
    except RecursionError:  # a self-referencing model cannot be inlined
        out_props, kept_defs = _clean(props, None, (), mapping=True), _clean(defs, None, (), True)
    out = {"type": "object", "properties": out_props, "required": schema.get("required", [])}
    out["additionalProperties"] = False
    return {**out, "$defs": kept_defs} if kept_defs else out


def _clean(
    node: Any, defs: Mapping[str, Any] | None, seen: tuple[str, ...], mapping: bool = False
) -> Any:
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


def _summarize(exc: ValidationError, limit: int = 5) -> str:
    parts: list[str] = []
    errors = exc.errors(include_url=False)
    for err in errors[:limit]:
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unexpected argument {_short(loc)}")
        elif err["type"] == "missing":
            parts.append(f"missing required argument {_short(loc)}")
        else:
            got = reprlib.repr(err.get("input"))
            where = loc if len(loc) <= 60 else f"{loc[:57]}..."
            parts.append(f"{where or 'arguments'}: {err['msg']} (got {got})")
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more problems")
    return "; ".join(parts)
