"""Build real, installed-looking plugin distributions for tests.

A distribution here is what pip leaves on disk: an importable package next to a
``<name>-<version>.dist-info`` folder with ``METADATA`` and
``entry_points.txt``. Putting the folder on ``sys.path`` makes
``importlib.metadata`` discover the entry point exactly as for a pip install.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import textwrap
import zipfile
from pathlib import Path

PROVIDER_SOURCE = """
from typing import ClassVar
from vocalis import hookimpl
from vocalis.providers.{kind} import {base}
from vocalis.settings import ProviderSettings, provider_settings_config


class {cls}({base}):
    name: ClassVar[str] = "{provider}"

    class Settings(ProviderSettings):
        model_config = provider_settings_config("{kind}", "{provider}")
        greeting: str = "hello"


@hookimpl
def vocalis_register_{kind}(register):
    register({cls})
"""

BASES = {
    "stt": "STT",
    "llm": "LLM",
    "tts": "TTS",
    "vad": "VAD",
    "eou": "EOU",
    "tools": "ToolSource",
    "realtime": "RealtimeModel",
    "transport": "Transport",
    "session_store": "SessionStore",
}


def provider_plugin_source(kind: str, provider: str) -> str:
    """Source of a plugin module registering one provider of ``kind``."""
    cls = "".join(part.capitalize() for part in provider.replace("-", "_").split("_")) + "Provider"
    return PROVIDER_SOURCE.format(kind=kind, base=BASES[kind], cls=cls, provider=provider)


def _files(dist: str, version: str, package: str, source: str, ep_name: str) -> dict[str, str]:
    info = f"{dist.replace('-', '_')}-{version}.dist-info"
    return {
        f"{package}/__init__.py": "",
        f"{package}/plugin.py": textwrap.dedent(source),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n",
        f"{info}/entry_points.txt": f"[vocalis]\n{ep_name} = {package}.plugin\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }


def install_fake_distribution(site: Path, *, dist: str, version: str, package: str, source: str, ep_name: str) -> Path:
    """Write a distribution into ``site`` (a folder the test puts on sys.path)."""
    for rel, text in _files(dist, version, package, source, ep_name).items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return site


def build_wheel(out_dir: Path, *, dist: str, version: str, package: str, source: str, ep_name: str) -> Path:
    """Build a real wheel file that ``pip install`` accepts."""
    files = _files(dist, version, package, source, ep_name)
    info = f"{dist.replace('-', '_')}-{version}.dist-info"
    wheel = out_dir / f"{dist.replace('-', '_')}-{version}-py3-none-any.whl"
    record_lines = []
    with zipfile.ZipFile(wheel, "w") as zf:
        for rel, text in files.items():
            data = text.encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record_lines.append(f"{rel},sha256={digest},{len(data)}")
            zf.writestr(rel, data)
        record_lines.append(f"{info}/RECORD,,")
        zf.writestr(f"{info}/RECORD", "\n".join(record_lines) + "\n")
    return wheel


def forget_modules(prefix: str) -> None:
    """Drop imported modules so the next test imports its own copy."""
    for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[name]


import pytest


class DistFactory:
    """Installs fake distributions into a temporary site folder on sys.path."""

    def __init__(self, site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.site = site
        self.packages: list[str] = []
        monkeypatch.syspath_prepend(str(site))

    def provider_plugin(
        self, dist: str, kind: str, provider: str, *, version: str = "1.2.3", ep_name: str | None = None
    ) -> str:
        return self.install(
            dist,
            provider_plugin_source(kind, provider),
            version=version,
            ep_name=ep_name or dist.removeprefix("vocalis-"),
        )

    def install(self, dist: str, source: str, *, version: str = "1.2.3", ep_name: str | None = None) -> str:
        package = dist.replace("-", "_")
        ep = ep_name or dist.removeprefix("vocalis-")
        install_fake_distribution(self.site, dist=dist, version=version, package=package, source=source, ep_name=ep)
        self.packages.append(package)
        return ep


@pytest.fixture
def dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install plugin distributions discoverable through real entry points."""
    import importlib

    factory = DistFactory(tmp_path / "site", monkeypatch)
    importlib.invalidate_caches()
    yield factory
    for package in factory.packages:
        forget_modules(package)
    importlib.invalidate_caches()
