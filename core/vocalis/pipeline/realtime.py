"""RealTimePipeline: a speech-to-speech model hears the user and answers."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from loguru import logger

from vocalis.audio import AudioFrame, AudioResampler
from vocalis.chat import ChatRole
from vocalis.pipeline.base import Pipeline
from vocalis.pipeline.config import ProviderTimeouts
from vocalis.pipeline.ports import output_label
from vocalis.pipeline.reconnect import Reconnecting
from vocalis.providers.base import ErrorKind, ProviderError, as_provider_error
from vocalis.providers.guards import check_realtime_event
from vocalis.providers.llm import ToolCallRequest
from vocalis.providers.realtime import RealtimeEvent, RealtimeEventType, RealtimeModel, RealtimeSession
from vocalis.speech import SpeechHandle
from vocalis.stages import AgentAudioStarted
from vocalis.states import AgentState

if TYPE_CHECKING:
    from vocalis.pipeline.ports import SessionPort
    from vocalis.plugin.registry import Registry

_END = None
_SECONDS_PER_CHAR = 0.07  # speaking rate assumed for a response cut short


def _drain(response: _Response) -> float:
    """Seconds of audio that arrived for ``response`` but were never played."""
    seconds = 0.0
    while not response.frames.empty():
        frame = response.frames.get_nowait()
        if frame is not None:
            seconds += frame.duration
    return seconds


class _Response:
    """Audio and transcript of one model response, as they arrive."""

    def __init__(self, response_id: str) -> None:
        self.id = response_id
        self.frames: asyncio.Queue[AudioFrame | None] = asyncio.Queue()
        self.text = ""
        self.tool_calls: list[ToolCallRequest] = []
        self.done = False
        self.failed = False


class RealTimePipeline(Reconnecting, Pipeline):
    """Runs a session on a :class:`RealtimeModel` (speech in, speech out).

    The model detects the user's turns itself; the pipeline plays its audio,
    records transcripts in the agent's chat context, runs its tool calls and
    relays interruptions (cancel, truncated to what the user heard).

    A connection that fails, closes, sends a malformed event or stops
    answering (``timeouts.realtime_response``, ``realtime_next_event``) is
    reported and reopened with the conversation so far; a turn it lost is
    answered with the session's ``error_message`` if one is set.

    Args:
        model: A realtime model instance or registered name.
        registry: Where a name is looked up (default: installed plugins).
        timeouts: How long to wait for responses and the transport.
    """

    def __init__(
        self,
        model: RealtimeModel | str,
        *,
        registry: Registry | None = None,
        timeouts: ProviderTimeouts | None = None,
    ) -> None:
        super().__init__()
        self._owned = False
        if isinstance(model, str):
            if registry is None:
                from vocalis.plugin.manager import make_plugin_manager

                registry = make_plugin_manager().registry
            model = registry.create("realtime", model)  # type: ignore[assignment]
            self._owned = True
        if not isinstance(model, RealtimeModel):
            raise TypeError(f"model= expects a RealtimeModel, got {type(model).__name__}")
        self.model: RealtimeModel = model
        self._rt: RealtimeSession | None = None
        self._reader: asyncio.Task[None] | None = None
        self._resampler = AudioResampler(model.sample_rate)
        self._response: _Response | None = None
        self._awaiting: asyncio.Future[_Response | None] | None = None
        self._speech_stopped_at: float | None = None
        self.timeouts = timeouts or ProviderTimeouts()
        self._init_reconnecting()

    async def attach(self, session: SessionPort) -> None:
        await super().attach(session)
        self.claims.claim([self.model])  # closed by aclose(), unless another session uses it
        await self._connect()

    async def _connect(self) -> None:
        assert self.session is not None
        agent = self.session.agent
        tools = list(self.session.tools.tools_for(agent).values())
        self._rt = await self.model.connect(instructions=agent.instructions, tools=tools, chat_ctx=agent.chat_context)
        self._reader = asyncio.get_running_loop().create_task(self._read(self._rt))

    async def on_agent_changed(self) -> None:
        assert self.session is not None
        if self._rt is not None:
            await self._rt.update_instructions(self.session.agent.instructions)

    async def aclose(self) -> None:
        self._cancel_no_response()
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            await asyncio.gather(self._reconnecting, return_exceptions=True)
        if self._rt is not None:
            await self._rt.aclose()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        claimed = bool(self.claims.claimed)
        await self.claims.release(self._report_close)
        if self._owned and not claimed:  # built from a name, never attached
            await self.model.aclose()

    def _report_close(self, provider: object, error: BaseException) -> None:
        if self.session is not None:
            self.session.report_error(self.model.label, error)
        else:
            logger.error("{} failed to close: {}", self.model.label, error)

    def push_audio(self, frame: AudioFrame) -> None:
        converted = self._resampler.push(frame)
        if converted is not None and self._rt is not None:
            self._rt.push_audio(converted)

    # -- model events ----------------------------------------------------------
    async def _read(self, rt: RealtimeSession) -> None:
        assert self.session is not None
        session, label = self.session, self.model.label
        try:
            async for item in rt:
                if rt is not self._rt:
                    return  # a replaced connection
                self._on_event(check_realtime_event(label, item))
            if rt.input_ended or session.closed or rt is not self._rt:
                return
            raise ProviderError("connection closed: the event stream ended", provider=label)
        except Exception as exc:
            if rt is self._rt and not session.closed:
                self._connection_lost(as_provider_error(label, exc))
        finally:
            if rt is self._rt and self._response is not None:
                self._end_response()

    def _on_event(self, event: RealtimeEvent) -> None:
        session = self.session
        assert session is not None
        kind = event.type
        if kind is RealtimeEventType.SPEECH_STARTED:
            self._cancel_no_response()
            session.user_speech_started()
            current = session.current_speech
            if current is not None and current.interrupt():
                logger.debug("user interrupted the realtime response")
        elif kind is RealtimeEventType.SPEECH_STOPPED:
            self._speech_stopped_at = asyncio.get_running_loop().time()
            session.user_speech_stopped()
            if self._awaiting is None:
                self._arm_no_response()
        elif kind is RealtimeEventType.INPUT_TRANSCRIPT:
            session.emit("on_speech_in", {"text": event.text, "is_final": event.is_final, "language": None})
            if event.is_final and event.text.strip():
                loop = asyncio.get_running_loop()
                session.agent.chat_context.add_message(ChatRole.USER, event.text.strip(), created_at=loop.time())
                session.user_activity()
                session.emit("user_turn", {"text": event.text.strip()})
        elif kind is RealtimeEventType.RESPONSE_STARTED:
            self._cancel_no_response()
            response = _Response(event.response_id)
            self._response = response
            if self._awaiting is not None and not self._awaiting.done():
                self._awaiting.set_result(response)
            else:
                handle = SpeechHandle("user_turn")
                session.enqueue(handle, lambda: self._play(handle, response, apologize=True), front=True)
            session.set_agent_state(AgentState.THINKING)
        elif kind is RealtimeEventType.AUDIO and self._response is not None and event.frame is not None:
            self._response.frames.put_nowait(event.frame)
        elif kind is RealtimeEventType.OUTPUT_TRANSCRIPT and self._response is not None:
            self._response.text += event.text
        elif kind is RealtimeEventType.FUNCTION_CALL and self._response is not None:
            self._response.tool_calls.extend(event.tool_calls)
        elif kind is RealtimeEventType.RESPONSE_DONE:
            self._end_response()
        elif kind is RealtimeEventType.ERROR:
            session.report_error(self.model.label, event.error or event.text or "unknown error")

    def _end_response(self) -> None:
        response, self._response = self._response, None
        if response is not None and not response.done:
            response.done = True
            response.frames.put_nowait(_END)

    # -- speaking ----------------------------------------------------------------
    async def speak(self, handle: SpeechHandle, text: str) -> None:
        await self._respond(handle, f"Say exactly this, and nothing else: {text}", apologize=False)

    async def generate_reply(
        self,
        handle: SpeechHandle,
        *,
        instructions: str | None = None,
        user_text: str | None = None,
    ) -> None:
        assert self.session is not None
        if user_text is not None:
            self.session.agent.chat_context.add_message(ChatRole.USER, user_text)
            self.session.emit("user_turn", {"text": user_text})
            rt = await self._connection()
            if rt is None:
                return
            try:
                await rt.send_text(user_text)
            except Exception as exc:
                self._connection_lost(as_provider_error(self.model.label, exc))
        await self._respond(handle, instructions, apologize=True)

    async def _respond(self, handle: SpeechHandle, instructions: str | None, *, apologize: bool) -> None:
        label, limit = self.model.label, self.timeouts.realtime_response
        rt = await self._connection()
        if rt is None:
            return  # reopening failed: reported
        self._awaiting = asyncio.get_running_loop().create_future()
        response: _Response | None = None
        try:
            await rt.create_response(instructions)
            response = await asyncio.wait_for(asyncio.shield(self._awaiting), timeout=limit)
        except TimeoutError:
            self._awaiting = None
            self._connection_lost(
                ProviderError(
                    f"timed out after {limit:g} s waiting for a response", provider=label, kind=ErrorKind.TIMEOUT
                )
            )
        except Exception as exc:
            self._awaiting = None
            self._connection_lost(as_provider_error(label, exc))
        finally:
            self._awaiting = None
        if response is None:
            if apologize:
                await self._say_sorry(handle)
            return
        await self._play(handle, response, apologize=apologize)

    async def _play(self, handle: SpeechHandle, response: _Response, *, apologize: bool = False) -> None:
        session = self.session
        assert session is not None
        output = session.audio_output
        pushed = 0.0
        heard: list[float] = []
        label, limit = self.model.label, self.timeouts.realtime_next_event
        sink = output_label(session)

        def on_interrupt() -> None:
            heard.append(output.clear_buffer() if output.speaking else pushed)
            play.cancel()

        async def consume() -> None:
            nonlocal pushed
            while True:
                try:
                    async with asyncio.timeout(limit) as timer:
                        frame = await response.frames.get()
                except TimeoutError:
                    if not timer.expired():
                        raise
                    raise ProviderError(
                        f"timed out after {limit:g} s waiting for the rest of the response", provider=label
                    ) from None
                if frame is None:
                    break
                if pushed == 0.0:
                    self._first_audio(handle)
                    session.agent_audio_started()
                try:
                    async with asyncio.timeout(self.timeouts.audio_output):
                        await output.capture_frame(frame)
                except TimeoutError:
                    raise ProviderError(
                        f"timed out after {self.timeouts.audio_output:g} s for the transport to take agent audio",
                        provider=sink,
                    ) from None
                except Exception as exc:
                    raise as_provider_error(sink, exc) from exc
                pushed += frame.duration
            output.flush()
            await output.wait_for_playout()

        play = asyncio.get_running_loop().create_task(consume())
        handle.add_interrupt_callback(on_interrupt)
        await asyncio.wait([play])
        failure = None if play.cancelled() else play.exception()
        cut_short = response.failed  # the connection dropped mid-response
        if failure is not None:
            response.failed = True
            if getattr(failure, "provider", "") == label:
                cut_short = True
                self._connection_lost(as_provider_error(label, failure))  # stuck: reopen it
            else:
                session.report_error(sink, failure)
            output.flush()  # what arrived still plays
            await output.wait_for_playout()
        if apologize and response.failed and pushed == 0 and not handle.interrupted:
            await self._say_sorry(handle)
            return
        if handle.interrupted and self._rt is not None:
            with contextlib.suppress(Exception):
                await self._rt.cancel_response(played_seconds=heard[0] if heard else 0.0)
        text = response.text.strip()
        if (handle.interrupted or response.failed) and pushed > 0:
            # Keep the words of what was played, in proportion to the whole
            # response's audio: what arrived, or, when the model stopped
            # before the end, what its transcript would take to say.
            played = heard[0] if heard else pushed
            total = pushed + _drain(response)
            if cut_short or not response.done:
                total = max(total, len(text) * _SECONDS_PER_CHAR)
            words = text.split()
            text = " ".join(words[: int(len(words) * min(1.0, played / total))])
        if text:
            session.agent.chat_context.add_message(
                ChatRole.ASSISTANT, text, interrupted=handle.interrupted, created_at=asyncio.get_running_loop().time()
            )
            session.emit("on_speech_out", {"text": text, "speech_id": handle.id})
        handle.text = text
        session.emit(
            "agent_turn",
            {"speech_id": handle.id, "text": text, "interrupted": handle.interrupted, "source": handle.source},
        )
        if response.tool_calls and not handle.interrupted:
            await self._run_tools(response.tool_calls)

    def _first_audio(self, handle: SpeechHandle) -> None:
        session = self.session
        assert session is not None
        ended = self._speech_stopped_at if handle.source == "user_turn" else None
        session.observe(AgentAudioStarted(handle.id, asyncio.get_running_loop().time(), ended))

    async def _run_tools(self, calls: list[ToolCallRequest]) -> None:
        session = self.session
        assert session is not None
        results = await session.tools.run(calls, session.agent, session.agent.chat_context)
        rt = await self._connection()
        if rt is None:
            return
        try:
            for result in results:
                await rt.send_tool_output(result.call_id, result.output, is_error=result.is_error)
        except Exception as exc:
            self._connection_lost(as_provider_error(self.model.label, exc))
            return
        if not any(result.handoff for result in results):
            handle = SpeechHandle("reply")
            session.enqueue(handle, lambda: self._respond(handle, None, apologize=True), front=True)

    def describe(self) -> dict[str, object]:
        """Provider info for logs and metrics."""
        return {"realtime": self.model.label, "model": self.model.model_name}
