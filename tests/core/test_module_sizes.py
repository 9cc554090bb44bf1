"""Modules of one job each: no module of the core passes 400 lines."""

from __future__ import annotations

from pathlib import Path

import vocalis

LIMIT = 400


def test_no_core_module_is_over_400_lines() -> None:
    root = Path(vocalis.__file__).parent
    sizes = {path.relative_to(root): len(path.read_text(encoding="utf-8").splitlines()) for path in root.rglob("*.py")}
    assert len(sizes) > 100  # the whole core was read
    assert {path: lines for path, lines in sizes.items() if lines > LIMIT} == {}
