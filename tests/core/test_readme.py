"""The README's set-up commands are the ones CI and users run."""

from __future__ import annotations

import re
from pathlib import Path

from vocalis.plugin.manager import make_plugin_manager

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_readme_has_exactly_two_setup_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert all("\n" not in command for command in commands)


def test_ci_runs_the_readme_test_command() -> None:
    _, test_command = readme_commands()
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_readme_test_example_runs() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Test your agent", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.+?)\n```", section, flags=re.S)
    # The example's pipeline finds its default turn detector by plugin
    # discovery, inside the loop: with every plugin installed, the first
    # discovery of the process imports them all (av, aiortc, the SDKs; seconds
    # on a busy machine), which the loop watchdog would count against the
    # example. Pay that one-time cost here, outside the loop.
    make_plugin_manager()
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})


def test_readme_agent_example_compiles_and_defines_tools() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("## A minimal agent", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.+?)\n```", section, flags=re.S)
    namespace: dict[str, object] = {"__name__": "readme_agent"}
    exec(compile(code, "README.md", "exec"), namespace)
    agent = namespace["WeatherAgent"]()  # type: ignore[operator]
    assert [tool.name for tool in agent.tools] == ["get_weather"]
