"""The LLM's side of a reply: rounds of text and tool calls, and preemptive requests.

:func:`llm_text` streams the LLM's text for one reply, running the tool
calls of each round before the next round, every chunk checked and timed
(:class:`~vocalis.pipeline.config.ProviderTimeouts`). A :class:`Preemptive`
request starts before the user's turn is committed, and is used only if
the turn is committed with the same words.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

from loguru import logger

from vocalis.chat import ChatContext, ChatRole
from vocalis.pipeline.config import ProviderTimeouts
from vocalis.pipeline.generation.loop_guard import LoopGuard
from vocalis.providers.base import ProviderError
from vocalis.providers.guards import END, check_chunk, next_item
from vocalis.providers.llm import LLM, ChatChunk, ToolCallRequest
from vocalis.stages import LLMFirstChunk, LLMRequestEnded, LLMRequestStarted, ToolCallFinished
from vocalis.states import AgentState

if TYPE_CHECKING:
    from vocalis.pipeline.generation.utterance import Utterance
    from vocalis.pipeline.ports import SessionPort


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

    A reply that starts repeating itself is ended there (:class:`LoopGuard`).

    Raises:
        ProviderError: The LLM failed, timed out (``timeouts``), yielded
            something other than a :class:`ChatChunk`, or ended its stream
            without any chunk.
    """
    limits = timeouts or ProviderTimeouts()
    guard = LoopGuard()
    try:
        rounds_source = _llm_rounds(session, llm, utterance, instructions, preemptive, limits)
        async with contextlib.aclosing(rounds_source) as rounds:
            async for text in rounds:
                if passed := guard.feed(text):
                    yield passed
                if guard.stopped:
                    logger.info("{}: the reply started repeating itself; it ends here", llm.label)
                    return
        if rest := guard.flush():
            yield rest
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
        session.set_agent_state(AgentState.SPEAKING if session.audio_output.speaking else AgentState.THINKING)
        loop = asyncio.get_running_loop()
        started = loop.time()
        speech_id = utterance.speech_id
        use_preemptive = step == 0 and preemptive is not None and not instructions
        if use_preemptive:
            assert preemptive is not None
            stream = preemptive.chunks()
            started = preemptive.started_at
        else:
            stream = llm.chat(request_ctx, tools=tools)
        session.observe(LLMRequestStarted(speech_id, llm.label, llm.model_name, started, use_preemptive))
        first: float | None = None
        chunk_count = 0
        prompt_tokens = completion_tokens = 0
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
                        session.observe(LLMFirstChunk(speech_id, first))
                    chunk_count += 1
                    if chunk.usage is not None:
                        prompt_tokens = chunk.usage.prompt_tokens
                        completion_tokens = chunk.usage.completion_tokens
                    if chunk.text:
                        yield chunk.text
                    calls.extend(chunk.tool_calls)
        finally:
            session.observe(LLMRequestEnded(speech_id, loop.time(), prompt_tokens, completion_tokens, chunk_count))
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
        for r in results:
            session.observe(ToolCallFinished(speech_id, r.name, r.call_id, r.started_at, r.duration, r.is_error))
        if any(result.handoff is not None for result in results):
            return
