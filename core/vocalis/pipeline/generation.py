"""The agent's side of a cascading turn: LLM text with tools → TTS → audio out.

Text reaches the TTS as soon as the LLM produces it, and audio reaches the
transport as soon as the TTS produces it. An interruption clears the
transport's buffer and cancels generation synchronously, then the assistant
message is cut down to what the user actually heard; so is it after a
provider failure. Each sentence is announced (``on_speech_out``) by a mark
on the audio output's playout timeline, so it is announced when it starts
playing, after any pause, and never when it was cut off before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from vocalis.chat import ChatContext, ChatMessage, ChatRole
from vocalis.event_types import SpeechOutEvent
from vocalis.observability.metrics import LLMMetrics, ToolMetrics, TTSMetrics, TurnMetrics
from vocalis.providers.base import ProviderError, as_provider_error
from vocalis.providers.guards import END, Deadline, check_audio, check_chunk, next_item
from vocalis.providers.llm import LLM, ChatChunk, ToolCallRequest
from vocalis.states import AgentState
from vocalis.text import speakable
from vocalis.pipeline.config import ProviderTimeouts
from vocalis.pipeline.ports import output_label

if TYPE_CHECKING:
    from vocalis.pipeline.ports import SessionPort
    from vocalis.providers.tts import TTS, TTSStream
    from vocalis.speech import SpeechHandle


# Speaking rate assumed for a sentence whose audio was cut short before any
# sentence of the reply was complete (about 14 characters a second).
_SECONDS_PER_CHAR = 0.07


class Utterance:
    """Book-keeping for one spoken reply: its messages and its audio timeline."""

    def __init__(self, chat_ctx: ChatContext) -> None:
        self.chat_ctx = chat_ctx
        self.messages: list[ChatMessage] = []
        self._open: ChatMessage | None = None
        self.segments: list[tuple[float, str]] = []  # (audio offset, sentence)
        self.last_complete = False  # whether the last segment's audio is all in
        self.pushed = 0.0
        self.heard: float | None = None  # seconds played, set when interrupted or failed
        self.played: float | None = None  # seconds played when playout ended
        self.first_audio_at: float | None = None
        self.flush_tts: Callable[[], None] | None = None
        self.speech_id = ""
        self.metrics: TurnMetrics | None = None
        self.failed = False  # a provider failed: what was not heard is dropped

    def add_text(self, text: str, now: float) -> str:
        """Text sent to the TTS joins the open assistant message.

        Returns:
            The text to push to the TTS (with a separating space when a new
            message follows an earlier one of the same reply).
        """
        if self._open is None:
            self._open = self.chat_ctx.add_message(ChatRole.ASSISTANT, "", created_at=now)
            if self.messages and not text[:1].isspace():
                text = " " + text
            self.messages.append(self._open)
        self._open.content += text
        return text

    def close_message(self) -> None:
        """Tool calls follow: speak what is pending now, and put later text
        into a new message after the calls."""
        self._open = None
        if self.flush_tts is not None:
            self.flush_tts()

    def start_segment(self, text: str) -> None:
        """The TTS's audio for a new sentence begins at the current offset."""
        self.segments.append((self.pushed, text))
        self.last_complete = False

    def _segment_end(self, index: int) -> float:
        """Where segment ``index``'s audio ends (or would have, for one cut short)."""
        if index + 1 < len(self.segments):
            return self.segments[index + 1][0]
        start, text = self.segments[index]
        if self.last_complete:
            return self.pushed
        # Its audio stopped coming (a failure, an interruption while the TTS
        # still worked on it): judge its full length from the reply's pace.
        done = self.segments[:-1]
        chars = sum(len(t) for _, t in done)
        spoken = start - done[0][0] if done else 0.0
        rate = spoken / chars if chars and spoken > 0 else _SECONDS_PER_CHAR
        return max(self.pushed, start + rate * len(text))

    def heard_text(self) -> str:
        """The sentences the user heard, the last one cut proportionally."""
        if self.heard is None:
            return " ".join(text for _, text in self.segments)
        parts: list[str] = []
        for index, (start, text) in enumerate(self.segments):
            if start >= self.heard:
                break
            end = self._segment_end(index)
            if end <= self.heard + 1e-9 or end <= start:
                parts.append(text)
            else:
                words = text.split()
                keep = int(len(words) * (self.heard - start) / (end - start))
                if keep:
                    parts.append(" ".join(words[:keep]))
        return " ".join(parts)

    def finish(self, interrupted: bool) -> str:
        """Cut the recorded messages to what was heard; returns that text."""
        heard = self.heard_text()
        for message in self.messages:
            message.content = message.content.strip()
        if not interrupted:
            return heard or " ".join(m.content for m in self.messages)
        budget = len(heard)
        for message in self.messages:
            if budget >= len(message.content):
                budget -= len(message.content) + 1
                continue
            cut = message.content[: max(budget, 0)]
            message.content = cut.rsplit(" ", 1)[0] if cut and not heard.endswith(cut) else cut
            message.interrupted = True
            budget = 0
        for message in self.messages:
            if not message.content and message in self.chat_ctx.items:
                self.chat_ctx.items.remove(message)
        if self.messages and self.messages[-1].content and not any(m.interrupted for m in self.messages):
            self.messages[-1].interrupted = True
        return heard


async def speak(
    session: SessionPort,
    handle: SpeechHandle,
    tts: TTS,
    text_source: AsyncIterator[str],
    utterance: Utterance,
    *,
    timeouts: ProviderTimeouts | None = None,
    apology: str | None = None,
) -> None:
    """Speak a text stream; returns when played out, interrupted or failed.

    Args:
        timeouts: Limits on the TTS and the transport.
        apology: Spoken instead when a provider fails before anything was
            heard (the session's ``error_message``); None stays silent.
    """
    timeouts = timeouts or ProviderTimeouts()
    text = await _speak_once(session, handle, tts, text_source, utterance, timeouts)
    nothing_heard = utterance.failed and utterance.pushed == 0
    if apology and nothing_heard and not handle.interrupted and not session.closed:
        sorry = Utterance(utterance.chat_ctx)

        async def one() -> AsyncIterator[str]:
            yield apology

        text = await _speak_once(session, handle, tts, one(), sorry, timeouts)
    handle.text = text
    session.emit(
        "agent_turn",
        {"speech_id": handle.id, "text": text, "interrupted": handle.interrupted, "source": handle.source},
    )


async def _speak_once(
    session: SessionPort,
    handle: SpeechHandle,
    tts: TTS,
    text_source: AsyncIterator[str],
    utterance: Utterance,
    timeouts: ProviderTimeouts,
) -> str:
    loop = asyncio.get_running_loop()
    output = session.audio_output
    work = loop.create_task(_generate(session, tts, text_source, utterance, timeouts))

    def on_interrupt() -> None:
        utterance.heard = output.clear_buffer() if output.speaking else utterance.pushed
        work.cancel()

    utterance.speech_id = handle.id
    utterance.metrics = session.turn_metrics(handle)
    handle.add_interrupt_callback(on_interrupt)
    if handle.interrupted:
        on_interrupt()
    await asyncio.wait([work])
    failure = None if work.cancelled() else work.exception()
    if failure is not None:
        utterance.failed = True
        session.report_error("speech", failure)
        if utterance.played is None and not handle.interrupted:
            # It failed before playout ended: what was queued still plays.
            output.flush()
            result = await output.wait_for_playout()
            utterance.played = result.position if utterance.pushed else 0.0
    if utterance.failed and utterance.heard is None:
        # After a failure, text the user never heard is not kept as said:
        # the cut is where playout stopped (a sentence cut short, in proportion).
        utterance.heard = min(utterance.played or 0.0, utterance.pushed)
    return utterance.finish(handle.interrupted or utterance.failed)


async def _generate(
    session: SessionPort,
    tts: TTS,
    text_source: AsyncIterator[str],
    utterance: Utterance,
    timeouts: ProviderTimeouts,
) -> None:
    loop = asyncio.get_running_loop()
    output = session.audio_output
    stream = tts.stream()
    utterance.flush_tts = stream.flush
    tts_record = None
    if utterance.metrics is not None:
        tts_record = utterance.metrics.tts = TTSMetrics(tts.label, tts.model_name)
    deadline = Deadline()
    forward = loop.create_task(_forward_audio(session, tts.label, stream, utterance, deadline, timeouts))
    deadline.task = forward
    try:
        try:
            async for text in text_source:
                if text:
                    if tts_record is not None:
                        if tts_record.started_at is None:
                            tts_record.started_at = session.recorder.rel(loop.time())
                        tts_record.characters += len(text)
                    stream.push_text(utterance.add_text(text, loop.time()))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # LLM, flow or tool failure: keep what was said
            utterance.failed = True
            session.report_error(getattr(exc, "provider", "") or "llm", exc)
        stream.end_input()
        # All the text is in: from now on the TTS owes audio, within limits.
        first = utterance.first_audio_at is None
        deadline.restart("tts", timeouts.tts_first_audio if first else timeouts.tts_next_audio)
        await asyncio.wait([forward])
        failure = deadline.error if forward.cancelled() else forward.exception()
        if failure is not None:
            utterance.failed = True
            session.report_error(tts.label, failure)
        output.flush()
        result = await output.wait_for_playout()
        utterance.played = result.position if utterance.pushed else 0.0
    finally:
        deadline.cancel()
        forward.cancel()
        with contextlib.suppress(BaseException):
            await forward
        await stream.aclose()
        aclose = getattr(text_source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(BaseException):
                await aclose()


def _announce_when_played(session: SessionPort, utterance: Utterance, start: float, text: str) -> None:
    """Emit ``on_speech_out`` when this sentence starts playing, not when it is
    synthesised (TTS runs ahead of playout): a mark at its offset on the audio
    output's timeline, so a pause delays it and an interruption that cuts the
    sentence off before it plays drops it."""
    payload: SpeechOutEvent = {"text": text, "speech_id": utterance.speech_id}
    if not session.audio_output.add_mark(start, lambda: session.emit("on_speech_out", payload)):
        if utterance.heard is None:
            # An output that keeps no timeline (its segment never started): say it now.
            session.emit("on_speech_out", payload)


async def _forward_audio(
    session: SessionPort,
    label: str,
    stream: TTSStream,
    utterance: Utterance,
    deadline: Deadline,
    timeouts: ProviderTimeouts,
) -> None:
    output = session.audio_output
    sink = output_label(session)
    iterator = aiter(stream)
    while True:
        # While the LLM still writes, the TTS may be waiting for text: no limit then.
        limit = None
        if stream.input_ended:
            limit = timeouts.tts_first_audio if utterance.first_audio_at is None else timeouts.tts_next_audio
        deadline.wait_on("tts", limit, label, "waiting for audio")
        try:
            item = await anext(iterator)
        except StopAsyncIteration:
            utterance.last_complete = stream.input_ended  # every sentence's audio is in
            break
        except Exception as exc:
            raise as_provider_error(label, exc) from exc
        audio = check_audio(label, item)
        start = utterance.pushed
        if audio.text:
            utterance.start_segment(audio.text)
        deadline.wait_on("output", timeouts.audio_output, sink, "for the transport to take agent audio")
        try:
            await output.capture_frame(audio.frame)
        except Exception as exc:
            raise as_provider_error(sink, exc) from exc
        utterance.pushed += audio.frame.duration
        if audio.segment_end:
            utterance.last_complete = True
        if audio.text:
            _announce_when_played(session, utterance, start, audio.text)
        metrics = utterance.metrics
        if metrics is not None and metrics.tts is not None:
            metrics.tts.audio_duration = round(metrics.tts.audio_duration + audio.frame.duration, 6)
        if utterance.first_audio_at is None:
            utterance.first_audio_at = now = asyncio.get_running_loop().time()
            if metrics is not None:
                metrics.first_audio_at = session.recorder.rel(now)
                first_audio_at, tts_record = metrics.first_audio_at, metrics.tts
                if tts_record is not None and tts_record.started_at is not None and first_audio_at is not None:
                    tts_record.ttfb = round(first_audio_at - tts_record.started_at, 6)
            session.agent_audio_started()
    if not stream.input_ended:
        raise ProviderError("stream ended early: it closed while text was still coming", provider=label)
    said = "".join(message.content for message in utterance.messages)
    if utterance.pushed == 0 and speakable(said):
        raise ProviderError(
            f"stream ended early: no audio for {len(said.strip())} characters of text", provider=label
        )


class Preemptive:
    """An LLM request started before the user's turn is committed.

    Chunks are buffered (nothing is spoken and no tool is run) until the
    turn is committed with the same transcript; otherwise it is cancelled.
    """

    def __init__(self, session: SessionPort, llm: LLM, transcript: str) -> None:
        self.transcript = transcript
        agent = session.agent
        self._context_size = len(agent.chat_context)
        # A copy: tools still running get their placeholder outputs in it.
        request = agent.chat_context.for_request().copy()
        request.add_message(ChatRole.USER, transcript)
        tools = list(session.tools.tools_for(agent).values()) if session.tools.max_steps else []
        self._chunks: list[ChatChunk] = []
        self._more = asyncio.Event()
        self._finished = False
        self._error: BaseException | None = None
        self.started_at = asyncio.get_running_loop().time()
        self._task = asyncio.get_running_loop().create_task(self._run(llm, request, tools))
        session.emit("preemptive_generation", {"transcript": transcript})

    async def _run(self, llm: LLM, request: ChatContext, tools: list[Any]) -> None:
        try:
            async for chunk in llm.chat(request, tools=tools):
                self._chunks.append(chunk)
                self._more.set()
        except Exception as exc:
            self._error = exc
        finally:
            self._finished = True
            self._more.set()

    def matches(self, transcript: str, chat_ctx: ChatContext) -> bool:
        """Usable for this committed turn: same words, same context before it."""
        return transcript == self.transcript and len(chat_ctx) == self._context_size

    async def chunks(self) -> AsyncIterator[ChatChunk]:
        """The buffered chunks, then the live ones."""
        index = 0
        while True:
            while index < len(self._chunks):
                yield self._chunks[index]
                index += 1
            if self._finished:
                if self._error is not None:
                    raise self._error
                return
            self._more.clear()
            await self._more.wait()

    def cancel(self) -> None:
        """Stop the request."""
        self._task.cancel()


async def llm_text(
    session: SessionPort,
    llm: LLM,
    utterance: Utterance,
    *,
    instructions: str | None = None,
    preemptive: Preemptive | None = None,
    timeouts: ProviderTimeouts | None = None,
) -> AsyncIterator[str]:
    """Stream the LLM's text, running tool calls between rounds.

    Raises:
        ProviderError: The LLM failed, timed out (``timeouts``), yielded
            something other than a :class:`ChatChunk`, or ended its stream
            without any chunk.
    """
    limits = timeouts or ProviderTimeouts()
    try:
        rounds_source = _llm_rounds(session, llm, utterance, instructions, preemptive, limits)
        async with contextlib.aclosing(rounds_source) as rounds:
            async for text in rounds:
                yield text
    finally:
        if preemptive is not None:
            preemptive.cancel()


async def _llm_rounds(
    session: SessionPort,
    llm: LLM,
    utterance: Utterance,
    instructions: str | None,
    preemptive: Preemptive | None,
    timeouts: ProviderTimeouts,
) -> AsyncGenerator[str, None]:
    runner = session.tools
    calls_made = 0
    for step in range(runner.max_steps + 1):
        agent = session.agent
        chat_ctx = agent.chat_context
        # Calls whose tool still runs (a barge-in left them behind) carry a
        # placeholder output in the request: it stays valid for every provider.
        request_ctx = chat_ctx.for_request()
        if instructions:
            request_ctx = request_ctx.copy()
            request_ctx.add_message(ChatRole.DEVELOPER, instructions)
        tools = list(runner.tools_for(agent).values()) if step < runner.max_steps else []
        calls: list[ToolCallRequest] = []
        session.set_agent_state(
            AgentState.SPEAKING if session.audio_output.speaking else AgentState.THINKING
        )
        loop = asyncio.get_running_loop()
        record = LLMMetrics(llm.label, llm.model_name, session.recorder.rel(loop.time()) or 0.0)
        started = loop.time()
        if step == 0 and preemptive is not None and not instructions:
            stream = preemptive.chunks()
            started = preemptive.started_at
            record.started_at = session.recorder.rel(started) or 0.0
            record.preemptive = True
        else:
            stream = llm.chat(request_ctx, tools=tools)
        if utterance.metrics is not None:
            utterance.metrics.llm.append(record)
        first: float | None = None
        chunk_count = 0
        # aclosing: an interruption closes the provider's stream at once, so
        # it can stop generating instead of running on in the background.
        try:
            async with contextlib.aclosing(stream) as chunks:  # type: ignore[type-var]
                while True:
                    limit = timeouts.llm_first_chunk if first is None else timeouts.llm_next_chunk
                    what = "the first chunk" if first is None else "the next chunk"
                    item = await next_item(llm.label, chunks, limit, what)
                    if item is END:
                        break
                    chunk = check_chunk(llm.label, item)
                    if first is None:
                        first = loop.time()
                        record.ttft = round(first - started, 6)
                        if utterance.metrics is not None and utterance.metrics.first_token_at is None:
                            utterance.metrics.first_token_at = session.recorder.rel(first)
                    chunk_count += 1
                    if chunk.usage is not None:
                        record.prompt_tokens = chunk.usage.prompt_tokens
                        record.completion_tokens = chunk.usage.completion_tokens
                    if chunk.text:
                        yield chunk.text
                    calls.extend(chunk.tool_calls)
        finally:
            _close_llm_record(record, loop.time(), started, first, chunk_count)
        if not chunk_count:
            # Every LLM ends a reply with at least one chunk: an empty stream is a dropped connection.
            raise ProviderError("stream ended early: no output at all", provider=llm.label)
        if not calls:
            return
        utterance.close_message()
        if step == runner.max_steps:
            # Tools were not offered this round; the calls still get their one output each.
            await runner.run(calls, agent, chat_ctx, refuse="no more tool calls are allowed in this turn")
            return
        results = await runner.run(calls, agent, chat_ctx, calls_so_far=calls_made)
        calls_made += len(calls)
        if utterance.metrics is not None:
            utterance.metrics.tools.extend(
                ToolMetrics(r.name, r.call_id, session.recorder.rel(r.started_at) or 0.0, r.duration, r.is_error)
                for r in results
            )
        if any(result.handoff is not None for result in results):
            return


def _close_llm_record(
    record: LLMMetrics, now: float, started: float, first: float | None, chunks: int
) -> None:
    record.duration = round(now - started, 6)
    if not record.completion_tokens:
        record.completion_tokens = chunks  # providers without usage: chunks ≈ tokens
    if first is not None and now > first and record.completion_tokens:
        record.tokens_per_second = round(record.completion_tokens / (now - first), 3)
