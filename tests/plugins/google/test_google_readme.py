"""The README's Python snippets run as printed: each compiles, binds every name it
uses (its own imports included), and what it imports from Vocalis exists.

Cheap on purpose: the snippets are not run (they build pipelines whose STT, TTS
and VAD plugins this plugin's test environment does not install), but a
snippet that leans on another's imports, or names something the packages do
not export, fails here.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[3] / "plugins" / "google" / "README.md"


def snippets() -> list[str]:
    return re.findall(r"```python\n(.+?)\n```", README.read_text(encoding="utf-8"), flags=re.S)


def bound_names(tree: ast.Module) -> set[str]:
    """Names the snippet binds anywhere: imports, assignments, defs, parameters."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def test_the_readme_has_snippets() -> None:
    assert len(snippets()) >= 2  # the usage example and the fallback example


@pytest.mark.parametrize("index", range(len(snippets())))
def test_a_snippet_stands_on_its_own(index: int) -> None:
    code = snippets()[index]
    compile(code, f"README.md, snippet {index}", "exec")
    tree = ast.parse(code)
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    unbound = sorted(used - bound_names(tree) - set(dir(builtins)))
    assert not unbound, f"snippet {index} uses names it does not import or define: {unbound}"
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.module is None:
            continue
        # Another plugin (vocalis_llamacpp) may not be installed in this environment.
        if not node.module.startswith("vocalis") or importlib.util.find_spec(node.module.split(".")[0]) is None:
            continue
        module = importlib.import_module(node.module)
        missing = [alias.name for alias in node.names if not hasattr(module, alias.name)]
        assert not missing, f"snippet {index}: {node.module} has no {missing}"
