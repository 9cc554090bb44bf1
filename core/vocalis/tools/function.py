"""Function tools: typed Python callables an LLM can call.

The JSON schema comes from the signature via a pydantic model, and the same
model validates and converts the LLM's arguments, so a tool body only sees
well-typed values. Every parameter needs a type annotation (``TypeError`` at
decoration time otherwise): an untyped one gives the LLM no guidance.

The schema is built in :mod:`vocalis.tools.schema`; arguments, errors and the
call context live in :mod:`vocalis.tools.arguments`, and are importable from
here too.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any, overload

from pydantic import ValidationError

from vocalis.chat.formats import JSONObject
from vocalis.tools.arguments import (
    ToolArgumentsError,
    ToolContext,
    ToolError,
    parse_tool_arguments,
    summarize_validation_error,
)
from vocalis.tools.arguments import _short as _short  # for vocalis.tools.runner
from vocalis.tools.schema import build_arguments_model, docstring_args, docstring_summary, tidy_schema

__all__ = [
    "FunctionTool",
    "ToolArgumentsError",
    "ToolContext",
    "ToolError",
    "as_function_tool",
    "find_function_tools",
    "function_tool",
    "parse_tool_arguments",
]

_NAME_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_P = inspect.Parameter


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
    parameters: JSONObject

    def __init__(self, func: Callable[..., object], *, name: str | None = None, description: str | None = None) -> None:
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
        self.description = description if description is not None else docstring_summary(doc)
        self._params, self._model = build_arguments_model(func, self.name, self._is_method, docstring_args(doc))
        self.parameters = tidy_schema(self._model.model_json_schema())

    def __repr__(self) -> str:
        bound = f" bound to {self._instance!r}" if self._instance is not None else ""
        return f"<FunctionTool {self.name!r}{bound}>"

    def __get__(self, instance: Any, owner: type | None = None) -> FunctionTool:
        return self if instance is None or not self._is_method else self.bind(instance)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target(*args, **kwargs)

    def bind(self, instance: object) -> FunctionTool:
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

    def to_openai_schema(self) -> JSONObject:
        """The OpenAI ``tools`` entry: ``{"type": "function", "function": {...}}``."""
        params = copy.deepcopy(self.parameters)
        function = {"name": self.name, "description": self.description, "parameters": params}
        return {"type": "function", "function": function}

    def to_anthropic_schema(self) -> JSONObject:
        """The Anthropic ``tools`` entry: ``{"name", "description", "input_schema"}``."""
        params = copy.deepcopy(self.parameters)
        return {"name": self.name, "description": self.description, "input_schema": params}

    async def invoke(
        self, arguments: str | Mapping[str, object] | None, *, context: ToolContext | None = None
    ) -> object:
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
            msg = f"Invalid arguments for tool {self.name!r}: {summarize_validation_error(exc)}"
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
    func: Callable[..., object], *, name: str | None = ..., description: str | None = ...
) -> FunctionTool: ...
@overload
def function_tool(
    func: None = None, *, name: str | None = ..., description: str | None = ...
) -> Callable[[Callable[..., object]], FunctionTool]: ...
def function_tool(
    func: Callable[..., object] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
) -> FunctionTool | Callable[[Callable[..., object]], FunctionTool]:
    """Turn a function or method into a :class:`FunctionTool`.

    Usable bare (``@function_tool``) or with options (``@function_tool(name="x")``).

    Args:
        func: The function to wrap.
        name: The tool name; defaults to the function's name.
        description: Defaults to the docstring's first paragraph.
    """

    def wrap(f: Callable[..., object]) -> FunctionTool:
        f = f._func if isinstance(f, FunctionTool) else f
        return FunctionTool(f, name=name, description=description)

    return wrap if func is None else wrap(func)


def as_function_tool(obj: Callable[..., object] | FunctionTool) -> FunctionTool:
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


def _defined_in_class(func: Callable[..., Any]) -> bool:
    # At decoration time the class does not exist yet; a function whose
    # qualname is nested in something other than "<locals>" sits in a class body.
    parts = getattr(func, "__qualname__", "").split(".")
    return inspect.isfunction(func) and len(parts) >= 2 and parts[-2] != "<locals>"
