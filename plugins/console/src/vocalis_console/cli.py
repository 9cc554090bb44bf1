"""``vocalis console``: a spoken conversation through this machine's mic and speaker."""

from __future__ import annotations

import asyncio
import inspect
import signal
from typing import TYPE_CHECKING, Any

import click

from vocalis_console.devices import AudioDeviceError, list_devices

if TYPE_CHECKING:
    from vocalis.event_types import SpeechInEvent


async def _make_agent(spec: str | None) -> Any:
    from vocalis.cli.run_cmd import load_object
    from vocalis.session.agent import Agent
    from vocalis.session.assistant import DefaultAssistant

    if spec is None:
        return DefaultAssistant()
    made = load_object(spec)
    agent = made if isinstance(made, Agent) else made()
    if inspect.isawaitable(agent):
        agent = await agent
    if not isinstance(agent, Agent):
        raise click.BadParameter(f"{spec} must give a vocalis.Agent, got {type(agent).__name__}")
    return agent


async def _console(agent_spec: str | None, transport_options: dict[str, Any]) -> None:
    from vocalis.pipeline.cascading import CascadingPipeline
    from vocalis.pipeline.config import EOUConfig
    from vocalis.session.agent_session import AgentSession
    from vocalis_console.transport import ConsoleTransport

    transport = ConsoleTransport(**{k: v for k, v in transport_options.items() if v is not None})
    session = AgentSession(
        await _make_agent(agent_spec), CascadingPipeline(eou_config=EOUConfig(preemptive_generation=True))
    )

    def show_transcript(e: SpeechInEvent) -> None:
        if e["is_final"] and e["text"]:
            click.echo(f"you:   {e['text']}")

    session.on("on_speech_in", show_transcript)
    session.on("agent_turn", lambda e: click.echo(f"agent: {e.get('text', '')}"))
    session.on("error", lambda e: click.echo(f"error: {e['source']}: {e['message']}", err=True))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    session.on("close", lambda e: stop.set())
    try:
        await session.start(transport)
        click.echo("Listening. Speak; Ctrl-C ends the conversation.")
        await stop.wait()
    finally:
        await session.close(reason="hangup")


@click.command("console")
@click.option("--agent", help="module:factory or file.py:factory making the Agent (default: the built-in assistant).")
@click.option("--input-device", help="Microphone: index or part of its name (default: the system's).")
@click.option("--output-device", help="Speaker: index or part of its name (default: the system's).")
@click.option(
    "--headphones", is_flag=True, help="Keep the microphone open while the agent speaks, so you can interrupt it."
)
@click.option("--list-devices", is_flag=True, help="Show the audio devices and exit.")
def console_command(
    agent: str | None, input_device: str | None, output_device: str | None, headphones: bool, list_devices: bool
) -> None:
    """Talk to the agent through this machine's microphone and speaker."""
    try:
        if list_devices:
            click.echo(_list())
            return
        options = {
            "input_device": _device(input_device),
            "output_device": _device(output_device),
            "half_duplex": False if headphones else None,
        }
        asyncio.run(_console(agent, options))
    except AudioDeviceError as exc:
        raise click.ClickException(str(exc)) from None


def _list() -> str:
    return list_devices()


def _device(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.isdigit() else value
