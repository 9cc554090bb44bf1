"""The README's Python examples run as printed.

Each block is compiled, checked for names it uses but never defines (the
NameError a reader would hit), and run, with the Cartesia settings aimed at
the local protocol server (so the streaming script really speaks). A block
that needs another plugin this environment lacks (``vocalis-elevenlabs``,
``vocalis-openai``) runs as far as that import or lookup; the ``all``
environment has every plugin and runs it whole.
"""

from __future__ import annotations

import builtins
import importlib.util
import re
import symtable
from pathlib import Path

import pytest
from cartesia_server import API_KEY, CartesiaServer

from vocalis.plugin.registry import UnknownProviderError

README = Path(__file__).resolve().parents[3] / "plugins" / "cartesia" / "README.md"
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
    assert len(BLOCKS) >= 3
    assert any("FallbackTTS([ElevenLabsTTS(), CartesiaTTS(), PiperTTS()])" in block for block in BLOCKS)
    assert any("tts.stream()" in block and "asyncio.run(main())" in block for block in BLOCKS)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_each_example_runs_as_printed(
    index: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = BLOCKS[index]
    compiled = compile(code, f"README.md example {index}", "exec")
    assert not undefined_names(code), f"example {index} uses names it never defines"
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("CARTESIA_API_KEY", API_KEY)
    with CartesiaServer() as server:  # in a thread of its own: the example runs its own event loop
        monkeypatch.setenv("VOCALIS_TTS_CARTESIA_BASE_URL", server.url)
        try:
            exec(compiled, {"__name__": f"readme_example_{index}"})
        except Exception as exc:
            if not missing_plugin(exc):
                raise
    assert server.violations == [], "the example sent malformed requests"
    if "asyncio.run(main())" in code:  # the streaming script spoke, with word timings
        out = capsys.readouterr().out
        assert "WordTiming(word='Hello'" in out and "WordTimestamp(word='Hello'" in out, out
        assert server.contexts, "it spoke over the WebSocket"


def test_the_check_finds_an_undefined_name() -> None:
    assert undefined_names("stream = tts.stream()\nasync def f():\n    play(stream)\n") == {"tts", "play"}
    assert undefined_names("import asyncio\nasync def main():\n    v = 1\n    print(v)\nasyncio.run(main())\n") == set()
