"""The llamacpp provider against the real SmolLM2-135M-Instruct model.

One provider (and so one loaded model) serves the whole module; the other
instances created here have the same model options and share it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from vocalis.chat import ChatContext
from vocalis.providers.base import ProviderError
from vocalis.providers.llm import ChatChunk
from vocalis_llamacpp import LlamaCppLLM
from vocalis_llamacpp import engine as engine_module
from vocalis_llamacpp.engine import _get_json

pytestmark = pytest.mark.slow

TOOLS_TEMPLATE = Path(__file__).parents[2] / "data" / "chatml_tools.jinja"
LONG_PROMPT = "Count from one to fifty in words."


def _context(question: str, system: str = "You are a helpful assistant. Answer in one short sentence.") -> ChatContext:
    ctx = ChatContext()
    ctx.add_message("system", system)
    ctx.add_message("user", question)
    return ctx


@pytest.fixture(scope="module")
def llm() -> LlamaCppLLM:
    # Replies end at max_tokens or where the model ends them (not at the first
    # sentence end after sentence_stop_after: tested on its own below).
    provider = LlamaCppLLM(seed=7, max_tokens=48, sentence_stop_after=48, _env_file=None)
    asyncio.run(provider.prewarm())
    return provider


@pytest.fixture
def greedy(llm: LlamaCppLLM) -> LlamaCppLLM:
    """Same model, greedy decoding: a prompt always gets the same reply."""
    return LlamaCppLLM(temperature=0.0, max_tokens=48, sentence_stop_after=48, _env_file=None)


@pytest.fixture
def long_llm(llm: LlamaCppLLM) -> LlamaCppLLM:
    """Same model, replies long enough to be stopped midway."""
    return LlamaCppLLM(seed=7, max_tokens=256, sentence_stop_after=256, repeat_penalty=1.0, _env_file=None)


def _long_context() -> ChatContext:
    # No system prompt asking for one short sentence: SmolLM2 then counts on
    # and on, so there is a long generation to stop.
    ctx = ChatContext()
    ctx.add_message("user", LONG_PROMPT)
    return ctx


@pytest.fixture(scope="module")
def long_reply(llm: LlamaCppLLM) -> int:
    """Tokens of the uninterrupted reply to :func:`_long_context` (``long_llm`` settings)."""
    provider = LlamaCppLLM(seed=7, max_tokens=256, sentence_stop_after=256, repeat_penalty=1.0, _env_file=None)
    usage = asyncio.run(_collect(provider, _long_context()))[-1].usage
    assert usage is not None and usage.completion_tokens >= 128, "no long reply to stop midway"
    return usage.completion_tokens


async def _collect(provider: LlamaCppLLM, ctx: ChatContext, **kwargs: Any) -> list[ChatChunk]:
    return [chunk async for chunk in provider.chat(ctx, **kwargs)]


async def _wait_idle(provider: LlamaCppLLM) -> None:
    """Wait until the server reports no slot generating.

    A stopped request's slot turns idle a little later (the server cancels it
    asynchronously); meanwhile it must not go on decoding: its token count
    may not grow while we watch. No wall-clock bound, so a loaded machine is
    only slow; a slot that never turns idle fails at the test timeout.
    """
    engine = provider._engine
    assert engine is not None
    first: dict[int, int] = {}
    while True:
        slots = await asyncio.to_thread(_get_json, engine.address, engine.api_key, "/slots")
        busy = {slot["id"]: _decoded(slot) for slot in slots if slot.get("is_processing")}
        if not busy:
            return
        for slot, decoded in busy.items():
            first.setdefault(slot, decoded)
            assert decoded <= first[slot] + 4, f"slot {slot} kept generating ({first[slot]} -> {decoded} tokens)"
        await asyncio.sleep(0.01)


def _decoded(slot: dict[str, Any]) -> int:
    return max((int(t.get("n_decoded", 0)) for t in slot.get("next_token", [])), default=0)


class Generations:
    """Counts the chunks each request handed over from llama.cpp (wraps ``Engine.generate``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.chunks: list[int] = []
        real = engine_module.Engine.generate

        def generate(engine: Any, request: dict[str, Any], on_chunk: Any, stop: Any) -> None:
            index = len(self.chunks)
            self.chunks.append(0)

            def counted(chunk: dict[str, Any]) -> None:
                self.chunks[index] += 1
                on_chunk(chunk)

            real(engine, request, counted, stop)

        monkeypatch.setattr(engine_module.Engine, "generate", generate)


@pytest.fixture
def generations(monkeypatch: pytest.MonkeyPatch) -> Generations:
    return Generations(monkeypatch)


async def test_answers_a_simple_question_in_several_chunks(llm: LlamaCppLLM) -> None:
    chunks = await _collect(llm, _context("What is 2 plus 2?"))
    text_chunks = [c for c in chunks if c.text]
    assert len(text_chunks) >= 3
    assert "".join(c.text for c in chunks).strip()
    last = chunks[-1]
    assert last.usage is not None and last.text == "" and last.tool_calls == []
    assert last.usage.prompt_tokens > 10
    assert 1 <= last.usage.completion_tokens <= 48
    assert all(c.usage is None for c in chunks[:-1])


def _text(chunks: list[ChatChunk]) -> str:
    return "".join(c.text for c in chunks)


async def test_say_hello(greedy: LlamaCppLLM) -> None:
    text = _text(await _collect(greedy, _context("Say the word hello.")))
    assert "hello" in text.lower(), text


async def test_aclose_midway_stops_quickly_and_the_next_chat_works(
    long_llm: LlamaCppLLM, generations: Generations
) -> None:
    stream = long_llm.chat(_long_context())
    received = 0
    async for chunk in stream:
        received += bool(chunk.text)
        if received == 3:
            break
    before = generations.chunks[-1]
    await asyncio.wait_for(stream.aclose(), 60)
    # Stopped at its next token: at most the chunk being handed over when
    # aclose() set the stop (the reply would run on for a few hundred tokens).
    assert generations.chunks[-1] <= before + 1, (before, generations.chunks[-1])
    await stream.aclose()  # idempotent
    await _wait_idle(long_llm)
    assert not long_llm._active
    chunks = await _collect(long_llm, _context("Say hello."))
    assert chunks[-1].usage is not None


async def test_cancelling_the_consumer_stops_generation(
    long_llm: LlamaCppLLM, generations: Generations, long_reply: int
) -> None:
    first = asyncio.Event()

    async def consume() -> None:
        async for chunk in long_llm.chat(_long_context()):
            if chunk.text:
                first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 60)
    before = generations.chunks[-1]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 60)
    # The generation stopped long before the end of the reply (relative, not
    # timed: the cancellation reaches the task at the loop's next turn).
    after = generations.chunks[-1]
    assert after <= before + (long_reply - before) // 2, (before, after, long_reply)
    await _wait_idle(long_llm)
    assert not long_llm._active


CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Italy": "Rome"}


async def test_concurrent_chats_all_complete(greedy: LlamaCppLLM) -> None:
    """Three chats on two slots (the third waits for a free slot) keep apart:
    each reply answers its own question, word for word as when asked alone."""
    questions = {country: _context(f"What is the capital of {country}?") for country in CAPITALS}
    together = await asyncio.gather(*(_collect(greedy, ctx) for ctx in questions.values()))
    for country, chunks in zip(questions, together, strict=True):
        text = _text(chunks)
        assert chunks[-1].usage is not None
        assert CAPITALS[country] in text, f"{country}: {text!r}"
        others = [city for other, city in CAPITALS.items() if other != country and city in text]
        assert not others, f"the reply about {country} mentions {others}: {text!r}"
        alone = _text(await _collect(greedy, questions[country]))
        assert text == alone, f"{country}: {text!r} beside other chats, {alone!r} alone"


async def test_a_chat_waiting_for_a_slot_can_be_abandoned(long_llm: LlamaCppLLM, generations: Generations) -> None:
    busy = [long_llm.chat(_long_context()) for _ in range(long_llm.settings.parallel)]
    for stream in busy:
        await stream.__anext__()  # holds a slot
    waiting = asyncio.create_task(_collect(long_llm, _context("Say hello.")))
    while len(generations.chunks) <= len(busy):  # its request is waiting for a slot
        await asyncio.sleep(0.01)
    assert not waiting.done()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 60)
    # It left while both slots were still taken: it never generated a token
    # (waiting for a slot first, its "hello" would have been generated).
    assert generations.chunks[len(busy)] == 0
    for stream in busy:
        await stream.aclose()
    await _wait_idle(long_llm)


async def test_provider_aclose_ends_chats_in_flight(long_llm: LlamaCppLLM) -> None:
    stream = long_llm.chat(_context(LONG_PROMPT))
    await stream.__anext__()
    await long_llm.aclose()
    rest = [chunk async for chunk in stream]
    assert len(rest) < 5 and all(c.usage is None for c in rest)
    await _wait_idle(long_llm)
    await long_llm.aclose()  # idempotent


async def test_tool_turns_in_the_history(greedy: LlamaCppLLM) -> None:
    ctx = _context("What is the weather in Paris?", system="You are a friendly voice assistant.")
    ctx.add_message("assistant", "Let me check.")
    ctx.add_function_call("call_1", "get_weather", '{"city": "Paris"}')
    ctx.add_function_output("call_1", "get_weather", "sunny, 21 degrees")
    ctx.add_function_call("call_2", "get_time", "not json")
    ctx.add_function_output("call_2", "get_time", "error: unknown city", is_error=True)
    chunks = await _collect(greedy, ctx)
    assert chunks[-1].usage is not None
    # Only the tool's result says so: without the history the model makes up
    # "pleasant, 22°C".
    text = _text(chunks)
    assert "sunny" in text.lower() and "21" in text, text


@dataclass
class _Tool:
    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)


WEATHER = _Tool(
    "get_weather",
    "Look up the current weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


async def test_tools_are_not_offered_through_smollm2s_own_template(llm: LlamaCppLLM) -> None:
    assert llm._engine is not None and not llm._engine.supports_tools
    chunks = await _collect(llm, _context("What is the weather in Paris?"), tools=[WEATHER])
    assert chunks[-1].usage is not None and chunks[-1].tool_calls == []


# Loading a second model: xllamacpp.Server() holds the GIL while it loads (~0.5 s),
# so even from a worker thread it stalls the loop. `vocalis serve` prewarms first.
@pytest.mark.loop_block_ok(5.0, reason="xllamacpp holds the GIL while loading a model")
async def test_a_tool_template_offers_tools_natively(llm: LlamaCppLLM) -> None:
    provider = LlamaCppLLM(chat_template=str(TOOLS_TEMPLATE), max_tokens=24, seed=3, _env_file=None)
    await provider.prewarm()
    assert provider._engine is not llm._engine
    assert provider._engine.supports_tools and provider._engine.supports_tool_calls
    ctx = _context("What is the weather in Paris?")
    ctx.add_function_call("call_1", "get_weather", '{"city": "Paris"}')
    ctx.add_function_output("call_1", "get_weather", "sunny, 21 degrees")
    ctx.add_message("user", "And in Rome?")
    chunks = await _collect(provider, ctx, tools=[WEATHER], tool_choice="auto")
    last = chunks[-1]
    assert last.usage is not None and last.usage.prompt_tokens > 100  # the tool list is in the prompt
    for call in last.tool_calls:  # SmolLM2-135M rarely calls: accept either outcome
        assert call.name == "get_weather"


async def test_empty_context_is_an_error(llm: LlamaCppLLM) -> None:
    with pytest.raises(ProviderError, match="empty") as info:
        await _collect(llm, ChatContext())
    assert info.value.provider == "llm:llamacpp" and not info.value.recoverable


async def test_a_prompt_longer_than_the_context_is_an_error(llm: LlamaCppLLM) -> None:
    with pytest.raises(ProviderError, match="context"):
        await _collect(llm, _context("word " * 3000))
    assert (await _collect(llm, _context("Say hello.")))[-1].usage is not None


async def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="not found"):
        await LlamaCppLLM(model=str(tmp_path / "nope.gguf")).prewarm()
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"\0" * 64)
    with pytest.raises(ProviderError, match="not a GGUF"):
        await _collect(LlamaCppLLM(model=str(junk)), _context("hi"))


async def test_settings_from_the_environment(llm: LlamaCppLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_LLM_LLAMACPP_MAX_TOKENS", "5")
    monkeypatch.setenv("VOCALIS_LLM_LLAMACPP_TEMPERATURE", "0")
    provider = LlamaCppLLM()
    assert provider.settings.max_tokens == 5 and provider.settings.temperature == 0.0
    chunks = await _collect(provider, _context(LONG_PROMPT))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens <= 5


async def test_the_model_is_loaded_once_per_process(llm: LlamaCppLLM) -> None:
    loaded = dict(engine_module._engines)
    others = [LlamaCppLLM(max_tokens=8, temperature=0.0), LlamaCppLLM(seed=1)]
    for other in others:
        await other.prewarm()
        assert other._engine is llm._engine
    assert engine_module._engines == loaded


async def test_a_long_reply_ends_at_a_sentence_end_not_at_the_cap(llm: LlamaCppLLM) -> None:
    provider = LlamaCppLLM(temperature=0.0, max_tokens=200, sentence_stop_after=12, _env_file=None)
    ctx = _context("Tell me about the sea.", system="You are a storyteller. Speak at length.")
    chunks = await _collect(provider, ctx)
    text = _text(chunks).rstrip()
    tokens = sum(1 for chunk in chunks if chunk.text)
    assert 12 <= tokens < 200 and chunks[-1].usage is None, (tokens, text)  # stopped by us, not by the cap
    assert text[-1] in ".!?", text


def test_defaults_fit_a_spoken_reply() -> None:
    settings = LlamaCppLLM(_env_file=None).settings
    assert 60 <= settings.max_tokens <= 100 and settings.sentence_stop_after < settings.max_tokens
