"""No ``Any`` on the public API: what applications and plugin authors call
and implement is typed all the way (mypy strict checks the rest of the core).

The public API is ``vocalis.__all__``, the provider contracts plugins
implement, the stage events observers see and the plugin hooks. Annotations
are read as written (the core uses postponed annotations), so a name that
only exists under ``TYPE_CHECKING`` is still checked. Overloaded functions are
judged by their overloads: that is what a caller sees.
"""

from __future__ import annotations

import importlib
import inspect
import re
import typing
from collections.abc import Callable, Iterator

import vocalis

PUBLIC_MODULES = [
    "vocalis",
    "vocalis.providers.base",
    "vocalis.providers.stt",
    "vocalis.providers.tts",
    "vocalis.providers.llm",
    "vocalis.providers.vad",
    "vocalis.providers.eou",
    "vocalis.providers.realtime",
    "vocalis.providers.transport",
    "vocalis.providers.audio_output",
    "vocalis.stages",
    "vocalis.event_types",
    "vocalis.plugin.hookspecs",
    "vocalis.plugin.registry",
    "vocalis.settings",
]

_ANY = re.compile(r"\bAny\b")
# NumPy's own convention for "any shape": the element type is what matters.
_NUMPY_SHAPE = re.compile(r"ndarray\[Any, ")


def _mentions_any(annotation: object) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return bool(_ANY.search(_NUMPY_SHAPE.sub("ndarray[", text)))


def _signatures(function: Callable[..., object]) -> list[Callable[..., object]]:
    overloads = typing.get_overloads(function)
    return list(overloads) if overloads else [function]


def _public_objects() -> Iterator[tuple[str, object]]:
    seen: set[int] = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
        for name in names:
            obj = getattr(module, name)
            if not getattr(obj, "__module__", "").startswith("vocalis") or id(obj) in seen:
                continue
            seen.add(id(obj))
            yield f"{module_name}.{name}", obj


def _members(cls: type) -> Iterator[tuple[str, object]]:
    """Public members, inherited ones from the core included."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("vocalis"):
            continue
        for name, member in vars(klass).items():
            if name in names or (name.startswith("_") and name != "__init__"):
                continue
            names.add(name)
            yield name, member
        for name, annotation in vars(klass).get("__annotations__", {}).items():
            if not name.startswith("_") and name not in names:
                names.add(name)
                yield name, annotation


def _violations() -> list[str]:
    found: list[str] = []

    def check(label: str, function: Callable[..., object]) -> None:
        for signature in _signatures(inspect.unwrap(function)):
            for parameter, annotation in getattr(signature, "__annotations__", {}).items():
                if _mentions_any(annotation):
                    found.append(f"{label} ({parameter}): {annotation}")

    for label, obj in _public_objects():
        if inspect.isclass(obj):
            for name, member in _members(obj):
                if isinstance(member, property) and member.fget is not None:
                    check(f"{label}.{name}", member.fget)
                elif isinstance(member, staticmethod | classmethod):
                    check(f"{label}.{name}", member.__func__)
                elif inspect.isfunction(member):
                    check(f"{label}.{name}", member)
                elif isinstance(member, str) and _mentions_any(member):
                    found.append(f"{label}.{name}: {member}")
        elif inspect.isfunction(obj):
            check(label, obj)
    return found


def test_the_public_api_has_no_any() -> None:
    assert _violations() == []


def test_the_check_finds_an_any() -> None:
    """The check is not vacuous: it sees what it looks for."""
    assert _mentions_any("dict[str, Any]") and _mentions_any("Callable[..., Any]")
    assert not _mentions_any("np.ndarray[Any, np.dtype[np.int16]]") and not _mentions_any("Anything")
    assert any(name == "vocalis.AgentSession" for name, _ in _public_objects())
    assert vocalis.AgentSession.__init__ in [m for _, m in _members(vocalis.AgentSession)]
