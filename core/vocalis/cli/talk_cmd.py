"""``vocalis talk``: a conversation over WAV files (or one typed turn)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from vocalis.cli.run_cmd import AgentSource, build_pipeline, load_agent_source
from vocalis.clock import run_virtual


async def _make_agent(source: AgentSource | None) -> Any:
    from vocalis.session.agent import Agent
    from vocalis.session.assistant import DefaultAssistant

    if source is None:
        return DefaultAssistant()
    spec, factory = source.spec, source.agent
    agent = factory() if callable(factory) and not isinstance(factory, Agent) else factory
    if inspect.isawaitable(agent):
        agent = await agent
    if not isinstance(agent, Agent):
        raise click.BadParameter(f"{spec} must return a vocalis.Agent, got {type(agent).__name__}")
    return agent


LATENCY_COLUMNS = (
    ("stt ms", "the user stopped speaking -> their last words were recognised (0: recognised before)"),
    ("eou ms", "the user stopped speaking -> the turn was committed (end-of-turn wait included)"),
    ("llm ttft ms", "the reply's LLM request sent -> its first token"),
    ("tts ttfb ms", "the first text sent to the TTS -> its first audio"),
    ("e2e ms", "the user stopped speaking -> the agent's first audio out"),
)
"""The latency table's columns and what each measures (also in ``--help``)."""


def _latency_table(metrics: list[Any]) -> str:
    def ms(value: float | None) -> str:
        # A stage that was ready before the user stopped took no time after it.
        return "-" if value is None else f"{max(0.0, value) * 1000:.0f}"

    rows = [("turn", *(name for name, _ in LATENCY_COLUMNS))]
    for m in metrics:
        rows.append(
            (str(m.turn), ms(m.stt_latency), ms(m.eou_delay), ms(m.llm_ttft), ms(m.tts_ttfb), ms(m.e2e_latency))
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


class _Printer:
    """Prints both sides as the conversation goes: what reached the agent, and
    what the agent said (as heard)."""

    def __init__(self) -> None:
        self.user_turns = 0
        self.words_heard = False
        self.timed_out = False
        self.errors: list[str] = []
        self.stt_failures: list[str] = []  # sources of speech-to-text errors

    def attach(self, session: Any) -> None:
        session.on("user_turn", self.on_user_turn)
        session.on("on_speech_in", self.on_speech_in)
        session.on("agent_turn", self.on_agent_turn)
        session.on("error", self.on_error)

    def on_user_turn(self, event: dict[str, Any]) -> None:
        # The words that entered the chat context: several sentences said
        # before the agent could answer arrive as one turn.
        self.user_turns += 1
        click.echo(f"you:   {event['text']}")

    def on_speech_in(self, event: dict[str, Any]) -> None:
        if event["is_final"] and event["text"].strip():
            self.words_heard = True

    def on_agent_turn(self, event: dict[str, Any]) -> None:
        text = event["text"]
        if self.timed_out and event["interrupted"]:
            mark = "[cut off: --timeout]"
        elif event["interrupted"]:
            mark = "[interrupted]" if text else "[interrupted before it said anything]"
        else:
            mark = ""
        click.echo("agent: " + " ".join(part for part in (text, mark) if part))

    def on_error(self, event: dict[str, Any]) -> None:
        self.errors.append(f"{event['source']}: {event['message']}")
        if event["source"].startswith("stt:") and event["source"] not in self.stt_failures:
            self.stt_failures.append(event["source"])

    def no_words(self, path: Path) -> str:
        """Why nothing was heard in ``path``: no speech in it, or a recogniser that failed."""
        if self.stt_failures:
            return f"talk: no words recognised in {path}: {', '.join(self.stt_failures)} failed (see above)"
        return f"talk: no speech heard in {path}"


# Ids that make each report of the same failure unique: a UUID, a request's id.
_UUID = re.compile(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b", re.IGNORECASE)
_LABELLED_ID = re.compile(r"\b((?:request|req|trace|id)(?:[ _-]?id)?[ :=#]+)([\w-]*\d[\w-]*)", re.IGNORECASE)
_REQ_ID = re.compile(r"\breq_[A-Za-z0-9]+")


def _without_ids(message: str) -> str:
    message = _UUID.sub("…", message)
    message = _LABELLED_ID.sub(lambda m: m.group(1) + "…", message)
    return _REQ_ID.sub("req_…", message)


def _merged(errors: list[str]) -> list[str]:
    """``errors`` with repeats counted: messages that differ only by an id are one line."""
    first: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for error in errors:
        key = _without_ids(error)
        first.setdefault(key, error)
        counts[key] += 1
    return [f"{key} ({times} times)" if times > 1 else first[key] for key, times in counts.items()]


class _Deadline(threading.Thread):
    """Real seconds of waiting, not counting the agent's audio playing.

    A reply may rightly take a minute to play; the limit is on waiting for
    everything else (recognition, models). It is kept by a thread: on the
    virtual clock of ``--fast`` a loop timer could not measure real time.
    """

    def __init__(self, session: Any, seconds: float, expired: asyncio.Event) -> None:
        super().__init__(name="vocalis-talk-timeout", daemon=True)
        self._session, self._seconds, self._expired = session, seconds, expired
        self._loop = asyncio.get_running_loop()
        self._halt = threading.Event()
        self.playing = False
        """Set from the loop: the agent's audio is playing now."""

    def run(self) -> None:
        waited, last = 0.0, time.monotonic()
        while not self._halt.wait(0.05):
            now = time.monotonic()
            if not self.playing:
                waited += now - last
            last = now
            if waited >= self._seconds:
                self._loop.call_soon_threadsafe(self._expired.set)
                return

    def stop(self) -> None:
        self._halt.set()
        self.join()


async def _until_answered(session: Any, seconds: float) -> bool:
    """Wait until everything said was recognised and answered.

    Returns False when ``seconds`` of real time pass first (time the agent's
    audio is playing does not count).
    """
    expired = asyncio.Event()
    deadline = _Deadline(session, seconds, expired)
    deadline.start()
    try:
        while session.busy and not expired.is_set():
            deadline.playing = session.audio_output.unplayed > 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(expired.wait(), 0.05)
        return not expired.is_set()
    finally:
        deadline.stop()


async def _talk(options: dict[str, Any]) -> int:
    from vocalis.pipeline.cascading import CascadingPipeline
    from vocalis.pipeline.config import EOUConfig
    from vocalis.session.agent_session import AgentSession
    from vocalis.session.job import run_job
    from vocalis.transports.file import FileTransport

    source: AgentSource | None = options["agent"]
    agent = await _make_agent(source)
    # Local models cost nothing per request: start the LLM before the turn is committed.
    pipeline = build_pipeline(source, lambda: CascadingPipeline(eou_config=EOUConfig(preemptive_generation=True)))
    # Paced like a live microphone; with --fast or --text the clock is virtual,
    # so the pacing costs no time and the turns are those of real time.
    transport = FileTransport(
        input=options["input"], output=options["output"], realtime=True, mix_input=options["mix_input"]
    )
    session = AgentSession(agent, pipeline, record_text=options["record_text"])
    printer = _Printer()
    printer.attach(session)
    timeout = options["timeout"]

    async def entrypoint(ctx: Any) -> None:
        try:
            await ctx.start_session(session, transport)
        except Exception:
            return  # reported as an error event, and the session closed
        answered = True
        if options["text"] is not None:
            # A greeting from on_enter is spoken first; the typed turn follows it.
            answered = await _until_answered(session, timeout)
            if answered:
                await session.send_text(options["text"], wait_for_playback=False)
                answered = await _until_answered(session, timeout)
        else:
            await transport.input_finished.wait()
            answered = await _until_answered(session, timeout)
        if not answered:
            printer.timed_out = True
            printer.errors.append(f"talk: the conversation did not finish within --timeout {timeout:g} s")
        await session.close()

    await run_job(entrypoint, metrics_path=options["metrics"])
    if options["input"] is not None and not printer.words_heard and session.start_error is None:
        printer.errors.append(printer.no_words(options["input"]))
    if session.metrics:
        click.echo("\n" + _latency_table(session.metrics))
    if options["output"]:
        click.echo(f"\nagent audio written to {options['output']}")
    # A provider that keeps failing the same way (a missing key: the session
    # reopens the stream and fails again) is one line with a count, not a wall.
    for error in _merged(printer.errors):
        click.echo(f"error: {error}", err=True)
    return 1 if printer.errors else 0


def _columns_help() -> str:
    lines = "\n".join(f"  {name:<12} {meaning}" for name, meaning in LATENCY_COLUMNS)
    return f"\b\nLatency table, per agent turn:\n{lines}"


@click.command("talk", epilog=_columns_help())
@click.option(
    "-i",
    "--input",
    "input_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="WAV file fed to the agent as the user's microphone.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="WAV file for the agent's audio, on the conversation timeline.",
)
@click.option(
    "-t",
    "--text",
    help="One typed user turn instead of audio (after the agent's greeting, if any); "
    "replies are printed without waiting for real-time playback.",
)
@click.argument("agent_file", metavar="[AGENT.py]", required=False)
@click.option(
    "--agent",
    help="path/agent.py, file.py:factory or module:factory making the Agent (default: the built-in assistant).",
)
@click.option(
    "--fast",
    is_flag=True,
    help="Skip the waiting: the input is paced as in real time and model work (and any network "
    "provider or MCP server) takes its real time, but silence, pauses and playback cost nothing, "
    "so the turns come out close to those of real time.",
)
@click.option("--mix-input", is_flag=True, help="Mix the user's audio into the output file.")
@click.option("--metrics", type=click.Path(dir_okay=False), help="Write per-turn metrics as JSON lines.")
@click.option(
    "--record-text", is_flag=True, help="Keep what was said in the metrics (transcripts in `vocalis report`)."
)
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    help="Seconds (real time, not counting the agent's audio playing) to wait, after the input "
    "ends, until everything said is recognised and answered (with --text: for the greeting, then "
    "for the reply). On expiry the partial reply is printed marked [cut off: --timeout] and the "
    "exit status is 1.",
)
def talk_command(
    agent_file: str | None,
    input_path: Path | None,
    output: Path | None,
    text: str | None,
    agent: str | None,
    fast: bool,
    mix_input: bool,
    metrics: str | None,
    record_text: bool,
    timeout: float,
) -> None:
    """Hold a conversation with an agent over WAV files, offline by default.

    AGENT.py is a file defining `make_agent()` (or `agent`: an Agent class or
    instance) and optionally `make_pipeline()`; without it (and without
    --agent) the built-in assistant talks, on the configured providers.

    Prints what reached the agent ("you:", one line per user turn: sentences
    said before the agent could answer are one turn), what the agent said as
    the user heard it ("agent:"), and a per-turn latency table. Ends when
    every word of the input was recognised and answered. Exits with status 1
    when a provider reported an error, no speech was heard, or --timeout
    expired (the reasons are printed).
    """
    if (input_path is None) == (text is None):
        raise click.UsageError("give exactly one of --input or --text")
    if agent_file is not None and agent is not None:
        raise click.UsageError("give the agent either as AGENT.py or with --agent, not both")
    spec = agent_file or agent
    source = load_agent_source(spec) if spec is not None else None
    virtual = fast or text is not None
    options = {
        "input": input_path,
        "output": output,
        "text": text,
        "agent": source,
        "virtual": virtual,
        "mix_input": mix_input,
        "metrics": metrics,
        "record_text": record_text,
        "timeout": timeout,
    }
    try:
        if virtual:
            # Real time only while a socket or pipe is open (a network API, an
            # MCP server): local models run in threads, which hold the clock.
            code = run_virtual(_talk(options), max_virtual_time=None, real_time_io=True)
        else:
            code = asyncio.run(_talk(options))
    except (ValueError, LookupError) as exc:  # no providers installed, bad names
        raise click.ClickException(str(exc)) from None
    if code:
        raise SystemExit(code)
