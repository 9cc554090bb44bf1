"""The realtime conformance suite: sessions, answers, cancel, tools, close and errors."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, cast

import pytest

from vocalis.chat.formats import JSONObject
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.providers.guards import check_realtime_event
from vocalis.providers.realtime import RealtimeEvent, RealtimeEventType, RealtimeModel, RealtimeSession
from vocalis.testing.conformance.base import ProviderConformance
from vocalis.testing.conformance.support import drain, run, silence, until_idle

E = RealtimeEventType
T = TypeVar("T")
Script = Callable[[Sequence["ScriptedReply"]], None]
_OUTPUT = (E.AUDIO, E.OUTPUT_TRANSCRIPT, E.FUNCTION_CALL)
_INSTRUCTIONS = "You are a helpful voice assistant. Answer in one short sentence."
_COUNT = "Count slowly from one to fifty, in words."
_COUNTING = " ".join(f"{n}," for n in range(1, 51))
_STRING = {"type": "string", "description": "The booking reference."}


@dataclass(frozen=True)
class ScriptedReply:
    """One answer a scripted backend gives (see :class:`RealtimeConformance`'s ``script``).

    Attributes:
        text: What it says: audio (and a transcript where the API sends one).
        tool_call: ``(name, arguments)``: it calls this tool instead of speaking.
        hold: It stops after a few chunks of audio until cancelled (or closed).
        fail: It refuses the request with a non-fatal error (one the API goes on after).
    """

    text: str = ""
    tool_call: tuple[str, dict[str, Any]] | None = None
    hold: bool = False
    fail: bool = False


@dataclass
class _Tool:
    name: str = "get_access_code"
    description: str = "Look up the access code of a booking."
    parameters: JSONObject = field(default_factory=lambda: {"type": "object", "properties": {"booking": _STRING}})


@contextlib.contextmanager
def serve_in_thread(server: AbstractAsyncContextManager[T], within: float = 30.0) -> Iterator[T]:
    """Run an asyncio server (started by entering it) on a thread and loop of its own,
    so that a check's ``asyncio.run`` loop holds only the provider's tasks.

    Args:
        server: A local stand-in for the service.
        within: Seconds starting or stopping may take.

    Yields:
        What entering ``server`` gave.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="conformance-server", daemon=True)
    thread.start()

    def call(step: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(cast(Coroutine[Any, Any, Any], step), loop).result(within)

    try:
        entered: T = call(server.__aenter__())
        try:
            yield entered
        finally:
            call(server.__aexit__(None, None, None))
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(within)
        loop.close()


def _kinds(events: Sequence[RealtimeEvent]) -> str:
    """Event types, each run of one type shown once with its length."""
    runs = [(kind.value, len(list(run))) for kind, run in itertools.groupby(e.type for e in events)]
    return "[" + ", ".join(kind + (f" x{n}" if n > 1 else "") for kind, n in runs) + "]"


def _done(event: RealtimeEvent) -> bool:
    return event.type is E.RESPONSE_DONE


class _Reader:
    """Reads a session's events (each checked well-formed) with a deadline per wait; keeps them all."""

    def __init__(self, session: RealtimeSession, label: str, rate: int, within: float, settle: float) -> None:
        self.session, self.label, self.rate, self.within, self.settle = session, label, rate, within, settle
        self.events: list[RealtimeEvent] = []

    async def until(self, done: Callable[[RealtimeEvent], bool] | None, what: str = "") -> list[RealtimeEvent]:
        """The events up to the first that is ``done`` (failing without one), or,
        with ``done`` None, those arriving within ``settle`` seconds (strays)."""
        got: list[RealtimeEvent] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.within if done else self.settle):
                async for item in self.session:
                    got.append(check_realtime_event(self.label, item))
                    self.events.append(got[-1])
                    if done is not None and done(got[-1]):
                        return got
        if done is not None:
            pytest.fail(f"waited {self.within:g} s for {what} in vain; the events: {_kinds(got)}", pytrace=False)
        return got


def _responses(events: Sequence[RealtimeEvent]) -> list[list[RealtimeEvent]]:
    """Each response's events, RESPONSE_STARTED to RESPONSE_DONE, checked to nest and to have one id each."""
    out: list[list[RealtimeEvent]] = []
    current: list[RealtimeEvent] | None = None
    for event in events:
        if event.type is E.RESPONSE_STARTED:
            assert current is None, f"a response started before the last one ended: {_kinds(events)}"
            current = [event]
        elif event.type is E.RESPONSE_DONE:
            assert current is not None, f"a RESPONSE_DONE ended no started response: {_kinds(events)}"
            current.append(event)
            ids = {e.response_id for e in current if e.response_id}
            assert len(ids) <= 1 and not ids & {r[-1].response_id for r in out}, (
                f"response ids {sorted(ids)}: one, new, each"
            )
            out.append(current)
            current = None
        elif event.type in _OUTPUT:
            assert current is not None, f"{event.type.value} came outside a response: {_kinds(events)}"
            current.append(event)
    return out


def _check_error(model: RealtimeModel, error: Any, what: str) -> None:
    ok = isinstance(error, ProviderError) and error.provider == model.label and isinstance(error.kind, ErrorKind)
    assert ok and isinstance(error.recoverable, bool), (
        f"{what} must be a ProviderError labelled {model.label!r}, with `recoverable` and `kind`: {error!r}"
    )


def _after_close(session: RealtimeSession, closed: asyncio.Event) -> list[RealtimeEvent]:
    """The events ``session`` queues once ``closed`` is set (any ProviderStream queues all it sends)."""
    late: list[RealtimeEvent] = []
    put = session._queue.put_nowait

    def watched(item: Any) -> None:
        late.extend([item] if closed.is_set() and isinstance(item, RealtimeEvent) else [])
        put(item)

    session._queue.put_nowait = watched  # type: ignore[method-assign]
    return late


class RealtimeConformance(ProviderConformance):
    """For realtime (speech-to-speech) models. Fixtures (``provider``, for the shared checks, is ``model``):

    - ``model`` (required): the provider, pointed at a backend: the service,
      or a local protocol server (run it with :func:`serve_in_thread`).
    - ``script``: None (default) for a backend that answers what it is asked
      (the checks ask in words: "say hello", "count to fifty", "use the
      tool"); a scripted one gives a callable taking the replies a check
      needs (:class:`ScriptedReply`, one per response, in order), called
      before the check connects. The failure check is skipped without one.
    - ``audio_received``: None, or a callable giving the seconds of user
      audio the backend received (all connections), to see audio arrive whole.

    The model's audio must come at its ``output_sample_rate`` (None: its ``sample_rate``).

    Attributes:
        response_seconds: Longest wait for one event (generous: nothing is timed).
        settle_seconds: How long a check listens for stray events after an end.
    """

    response_seconds: ClassVar[float] = 30.0
    settle_seconds: ClassVar[float] = 0.3

    @pytest.fixture
    def model(self) -> RealtimeModel:
        raise NotImplementedError("override the `model` fixture with your realtime model, pointed at a backend")

    @pytest.fixture
    def provider(self, model: RealtimeModel) -> RealtimeModel:
        return model

    @pytest.fixture
    def script(self) -> Script | None:
        return None

    @pytest.fixture
    def audio_received(self) -> Callable[[], float] | None:
        return None

    @contextlib.asynccontextmanager
    async def _session(
        self, model: RealtimeModel, script: Script | None, *replies: ScriptedReply, **options: Any
    ) -> AsyncIterator[_Reader]:
        """Script ``replies``, open a session; close the model after."""
        if script is not None:
            script(replies)
        session = await model.connect(instructions=_INSTRUCTIONS, **options)
        try:
            rate = model.output_sample_rate or model.sample_rate
            yield _Reader(session, model.label, rate, self.response_seconds, self.settle_seconds)
        finally:
            await model.aclose()

    async def _answer(self, reader: _Reader, prompt: str | None, what: str) -> list[RealtimeEvent]:
        """Ask for an answer (after ``prompt`` as user text); the response, checked."""
        if prompt is not None:
            await reader.session.send_text(prompt)
        await reader.session.create_response()
        await reader.until(lambda e: _done(e) and not e.interrupted, what)
        response = _responses(reader.events)[-1]
        self._check_audio(reader, response, what)
        return response

    def _check_audio(self, reader: _Reader, response: list[RealtimeEvent], what: str) -> None:
        frames = [e.frame for e in response if e.type is E.AUDIO and e.frame is not None]
        assert frames and all(f.data for f in frames), f"{what} has no audio, or empty frames: {_kinds(response)}"
        rates = {frame.sample_rate for frame in frames}
        assert rates == {reader.rate}, f"{what}: audio at {sorted(rates)} Hz, not {reader.rate} Hz"
        errors = [e.text for e in reader.events if e.type is E.ERROR]
        assert not errors, f"the session reported errors: {errors}"

    async def _cut(self, reader: _Reader) -> None:
        """Ask for a long answer, cancel it at its first audio, read to its end."""
        await reader.session.send_text(_COUNT)
        await reader.session.create_response()
        heard = await reader.until(lambda e: e.type is E.AUDIO, "the answer's first audio")
        await reader.session.cancel_response(played_seconds=sum(e.frame.duration for e in heard if e.frame))
        cut = await reader.until(_done, "the end of the cancelled response")
        assert cut[-1].interrupted, "a cancelled response must end with interrupted=True"

    def test_connect_and_close(self, model: RealtimeModel) -> None:
        """Closing twice is fine; closing the model ends open sessions; then nothing of it runs."""

        async def go() -> None:
            before = asyncio.all_tasks()
            first = await model.connect(instructions=_INSTRUCTIONS)
            await asyncio.wait_for(first.aclose(), self.stop_seconds)
            await first.aclose()
            await drain(first)
            second = await model.connect(instructions=_INSTRUCTIONS)
            await asyncio.wait_for(model.aclose(), self.stop_seconds)
            await model.aclose()
            await drain(second)  # fails unless closing the model ended it
            await until_idle(self._modules(model), before, self.stop_seconds, "closed realtime sessions")

        run(go(), 10 * self.response_seconds)

    def test_audio_at_the_declared_rate_is_accepted(
        self, model: RealtimeModel, script: Script | None, audio_received: Callable[[], float] | None
    ) -> None:
        """A second of audio at ``sample_rate`` reaches the backend whole, and the session goes on."""

        async def go() -> None:
            async with self._session(model, script, ScriptedReply("Hello, I am listening.")) as reader:
                frames = silence(1.0, model.sample_rate)
                for frame in frames:
                    reader.session.push_audio(frame)
                    await asyncio.sleep(0)
                pushed = sum(frame.duration for frame in frames)
                if audio_received is not None:
                    for _ in range(int(self.response_seconds * 100)):  # until it is all there, or the deadline
                        if audio_received() >= pushed - 0.03:
                            break
                        await asyncio.sleep(0.01)
                    await asyncio.sleep(self.settle_seconds)
                    got = audio_received()
                    assert abs(got - pushed) <= 0.03, f"the backend got {got:.3f} s of the {pushed:.3f} s pushed"
                await self._answer(reader, "Say hello.", "the answer after the audio")

        run(go(), 10 * self.response_seconds)

    def test_answers_come_one_response_each_in_order(self, model: RealtimeModel, script: Script | None) -> None:
        """Text then a request, then a request with instructions: two responses in turn, audio in each, one end each."""

        async def go() -> None:
            async with self._session(model, script, ScriptedReply("Hello there!"), ScriptedReply("Two.")) as reader:
                await reader.session.update_instructions(_INSTRUCTIONS + " Be friendly.")
                await self._answer(reader, "Say hello.", "the answer")
                await reader.session.create_response("Say the number two, nothing else.")
                await reader.until(_done, "the end of the second response")
                after = await reader.until(None)
                stray = [e for e in after if e.type in (*_OUTPUT, E.RESPONSE_DONE)]
                assert not stray, f"events of the answer came after its end: {_kinds(after)}"
                responses = _responses(reader.events)
                assert len(responses) == 2, f"two requests must give two responses: {_kinds(reader.events)}"
                assert not responses[1][-1].interrupted, "the second response ended as interrupted"
                self._check_audio(reader, responses[1], "the second response")

        run(go(), 10 * self.response_seconds)

    def test_cancel_ends_the_response(self, model: RealtimeModel, script: Script | None) -> None:
        """A cancel with nothing playing is harmless; one mid-answer ends it (interrupted), no audio after."""

        async def go() -> None:
            replies = (ScriptedReply(_COUNTING, hold=True), ScriptedReply("Okay."))
            async with self._session(model, script, *replies) as reader:
                await reader.session.cancel_response()
                await reader.session.cancel_response(played_seconds=0.0)
                await self._cut(reader)
                after = await reader.until(None)
                stray = [e for e in after if e.type in (*_OUTPUT, E.RESPONSE_DONE)]
                assert not stray, f"the cancelled response went on: {_kinds(after)}"
                await self._answer(reader, "Never mind. Just say okay.", "the answer after a cancel")

        run(go(), 10 * self.response_seconds)

    def test_a_cancel_is_not_user_speech(self, model: RealtimeModel, script: Script | None) -> None:
        """No audio was pushed, so a cancel brings no SPEECH_STARTED (which the pipeline takes for a barge-in)."""

        async def go() -> list[RealtimeEvent]:
            async with self._session(model, script, ScriptedReply(_COUNTING, hold=True)) as reader:
                await self._cut(reader)
                await reader.until(None)
                return reader.events

        events = run(go(), 10 * self.response_seconds)
        assert E.SPEECH_STARTED not in [e.type for e in events], f"speech with no audio: {_kinds(events)}"

    def test_a_tool_call_and_its_output(self, model: RealtimeModel, script: Script | None) -> None:
        """A call (inside a response) has an id, the name and JSON arguments; its output brings the answer."""
        tool, booking = _Tool(), f"BK-{secrets.token_hex(3).upper()}"
        replies = (ScriptedReply(tool_call=(tool.name, {"booking": booking})), ScriptedReply("It is 40213."))

        async def go() -> None:
            async with self._session(model, script, *replies, tools=[tool]) as reader:
                await reader.session.send_text(f"What is the access code of booking {booking}? Use the tool.")
                await reader.session.create_response()
                await reader.until(lambda e: e.type is E.FUNCTION_CALL, "a tool call")
                await reader.until(_done, "the end of the response that called the tool")
                _responses(reader.events)  # the call came inside a response
                calls = [call for e in reader.events if e.type is E.FUNCTION_CALL for call in e.tool_calls]
                unique = len({c.call_id for c in calls}) == len(calls)
                assert unique and (len(calls) == 1 or not script), f"one call made, these reported: {calls}"
                call = calls[0]
                assert call.call_id and call.name == tool.name, f"a call needs its id and the tool's name: {call}"
                arguments = json.loads(call.arguments)
                assert isinstance(arguments, dict) and arguments.get("booking") == booking, f"arguments {arguments}"
                await reader.session.send_tool_output(call.call_id, "The access code is 40213.")
                await self._answer(reader, None, "the answer after the tool output")

        run(go(), 10 * self.response_seconds)

    def test_nothing_arrives_after_aclose(self, model: RealtimeModel, script: Script | None) -> None:
        """Closing mid-answer: no event queued after; later input ignored or refused; all work stops."""

        async def go() -> list[RealtimeEvent]:
            before, closed = asyncio.all_tasks(), asyncio.Event()
            async with self._session(model, script, ScriptedReply(_COUNTING, hold=True)) as reader:
                session, late = reader.session, _after_close(reader.session, closed)
                await session.send_text(_COUNT)
                await session.create_response()
                await reader.until(lambda e: e.type is E.AUDIO, "the answer's first audio")
                await asyncio.wait_for(session.aclose(), self.stop_seconds)
                closed.set()
                with contextlib.suppress(ProviderError, RuntimeError):
                    session.push_audio(silence(0.02, model.sample_rate)[0])
                for call in (session.send_text("Hi?"), session.create_response(), session.cancel_response()):
                    with contextlib.suppress(ProviderError, RuntimeError):
                        await call
                await drain(session)
                await until_idle(self._modules(model), before, self.stop_seconds, "closed realtime session")
                return late

        late = run(go(), 10 * self.response_seconds)
        assert not late, f"the session queued {len(late)} event(s) after aclose(): {_kinds(late)}"

    def test_failures_are_labelled_provider_errors(self, model: RealtimeModel, script: Script | None) -> None:
        """A failed request: an ERROR event with a labelled ProviderError (and it goes on), or a failed stream."""
        if script is None:
            pytest.skip("a backend that is not scripted cannot fail on cue")

        async def go() -> None:
            async with self._session(model, script, ScriptedReply(fail=True), ScriptedReply("Still here.")) as reader:
                await reader.session.send_text("Say hello.")
                await reader.session.create_response()
                try:
                    failed = await reader.until(lambda e: e.type is E.ERROR, "an error for the failed request")
                except ProviderError as exc:
                    _check_error(model, exc, "the error ending the stream")
                    return
                _check_error(model, failed[-1].error, "an ERROR event's error")
                reader.events = [e for e in reader.events if e.type is not E.ERROR]
                await self._answer(reader, "Say hello again.", "the answer after an error")  # it goes on

        run(go(), 10 * self.response_seconds)
