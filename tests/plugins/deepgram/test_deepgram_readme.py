"""The README's Python examples run as printed.

Each block is compiled, checked for names it uses but never defines (the
NameError a reader would hit), and run, with the Deepgram settings aimed at
the local protocol servers. A block that needs another plugin this
environment lacks (``vocalis-piper`` here, an LLM) runs as far as that
import or lookup; the ``all`` environment has every plugin and runs it whole.
"""

from __future__ import annotations

import builtins
import importlib.util
import re
import symtable
from pathlib import Path

import pytest
from deepgram_listen_server import ListenServer
from deepgram_server_base import API_KEY
from deepgram_speak_server import SpeakServer

from vocalis.plugin.registry import UnknownProviderError

README = Path(__file__).resolve().parents[3] / "plugins" / "deepgram" / "README.md"
BLOCKS = re.findall(r"```python\n(.+?)```", README.read_text(encoding="utf-8"), flags=re.S)


def undefined_names(code: str) -> set[str]:
    """Names read somewhere in ``code`` that it neither assigns nor imports, nor are builtins."""
    top = symtable.symtable(code, "README.md", "exec")
    defined = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    missing: set[str] = set()
    pending = [top]
    while pending:
        table = pending.pop()
        pending.extend(table.get_children())
        for symbol in table.get_symbols():
            name = symbol.get_name()
            if symbol.is_referenced() and (table is top or symbol.is_global()) and name not in defined:
                missing.add(name)
    return {name for name in missing if not hasattr(builtins, name)}


def missing_plugin(exc: BaseException) -> bool:
    """Whether ``exc`` says that a plugin the block names is not installed here."""
    if isinstance(exc, ModuleNotFoundError):
        return bool(exc.name) and exc.name.startswith("vocalis_") and importlib.util.find_spec(exc.name) is None
    if isinstance(exc, UnknownProviderError):
        return True
    return isinstance(exc, ValueError) and "none configured" in str(exc)


def test_the_readme_has_its_examples() -> None:
    assert len(BLOCKS) >= 2
    assert any("FallbackSTT([DeepgramSTT(), WhisperSTT()])" in block for block in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_example_runs_as_printed(
    index: int,
    listen: ListenServer,
    speak: SpeakServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = BLOCKS[index]
    compiled = compile(code, f"README.md example {index}", "exec")
    assert not undefined_names(code), f"example {index} uses names it never defines"
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DEEPGRAM_API_KEY", API_KEY)
    monkeypatch.setenv("VOCALIS_STT_DEEPGRAM_BASE_URL", listen.url)
    monkeypatch.setenv("VOCALIS_TTS_DEEPGRAM_BASE_URL", speak.url)
    try:
        exec(compiled, {"__name__": f"readme_example_{index}"})
    except Exception as exc:
        if not missing_plugin(exc):
            raise


def test_the_check_finds_an_undefined_name() -> None:
    assert undefined_names("from a import b\nx = b(c)\nasync def f():\n    return [y async for y in d]\n") == {"c", "d"}
    assert undefined_names("import asyncio\nasync def main():\n    v = 1\n    print(v)\nasyncio.run(main())\n") == set()
