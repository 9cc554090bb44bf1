"""The LLM conformance suite: answers, pending tool outputs, close and cancel, tool history."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from vocalis.chat import ChatContext, ChatRole, FunctionCallOutput
from vocalis.testing.conformance.base import ProviderConformance
from vocalis.testing.conformance.support import run, until_idle


class LLMConformance(ProviderConformance):
    """For LLM providers.

    Tool history (``test_tool_history_reaches_the_model``): a conversation
    where a tool call (with a random booking reference as its argument)
    returned a random five-digit access code, which the user asked for. The
    code is nowhere else, so nothing but a request that carries the history
    can produce it. Two kinds of evidence, and a provider needs the one that
    fits how it is tested:

    - The reply (default): the model must say the code. This needs a model
      that reads its context: SmolLM2-135M does (30 of 30 random codes,
      greedy and at temperature 0.2). Weak as small models are, one that
      is given a tool result and asked for it repeats it; asking it about
      the *call* (whose reference, which of two calls) is beyond them, so
      the reply proves only that the result reached the model.
    - What reached the model: override the ``model_input`` fixture to return
      a callable giving the text of the latest request as the model's side
      received it (the JSON body a local test server recorded, the messages
      handed to an in-process engine). The tool's name and the booking
      reference (the call) must then come before the code (the result).
      This proves the call as well, and is the only evidence possible for a
      scripted backend (a canned test server, a fake): such suites set
      ``scripted_model = True``, which drops the reply check.

    Checking the request is the fairer test of a plugin (it is what the
    plugin builds, whatever the model makes of it); the reply check is the
    end-to-end proof. Suites with a real model should use both.

    Attributes:
        scripted_model: The backend replies from a script, not from the
            conversation; requires ``model_input``.
    """

    scripted_model: ClassVar[bool] = False

    @pytest.fixture
    def model_input(self) -> Callable[[], str] | None:
        """None, or a callable returning the latest request as the model's side saw it."""
        return None

    def _context(self, question: str) -> ChatContext:
        ctx = ChatContext()
        ctx.add_message(ChatRole.SYSTEM, "You are a helpful assistant. Answer in one short sentence.")
        ctx.add_message(ChatRole.USER, question)
        return ctx

    def test_streams_an_answer(self, provider: Any) -> None:
        async def go() -> list[Any]:
            return [chunk async for chunk in provider.chat(self._context("Say hello."))]

        chunks = run(go())
        assert "".join(c.text for c in chunks).strip()

    def test_a_request_with_a_tool_still_running_is_accepted(self, provider: Any) -> None:
        """A barge-in left a tool running: the call has the placeholder output
        (:data:`vocalis.chat.PENDING_TOOL_OUTPUT`) and the user spoke again.
        The request is valid for OpenAI and Anthropic; the provider answers it."""
        from vocalis.chat import PENDING_TOOL_OUTPUT, request_problems

        ctx = ChatContext()
        ctx.add_message(ChatRole.SYSTEM, "You are a helpful voice assistant. Answer in one short sentence.")
        ctx.add_message(ChatRole.USER, "Find me a flight to Oslo.")
        ctx.add_function_call("call_pending_1", "search_flights", '{"city": "Oslo"}')
        ctx.add_message(ChatRole.USER, "Actually, never mind. Just say okay.")
        request = ctx.for_request()
        assert request_problems(request) == []
        outputs = [item.output for item in request.items if isinstance(item, FunctionCallOutput)]
        assert outputs == [PENDING_TOOL_OUTPUT]

        async def go() -> list[Any]:
            return [chunk async for chunk in provider.chat(request)]

        chunks = run(go())
        assert "".join(c.text for c in chunks).strip() or any(c.tool_calls for c in chunks)

    def test_close_midway(self, provider: Any) -> None:
        """Closing the reply after its first chunk: prompt, final, and all work stops."""
        modules = self._modules(provider)

        async def go() -> float:
            before = asyncio.all_tasks()
            stream = provider.chat(self._context("Count from one to fifty in words."))
            async for _ in stream:
                break
            started = time.perf_counter()
            await stream.aclose()
            took = time.perf_counter() - started
            with pytest.raises(StopAsyncIteration):
                await stream.__anext__()
            await until_idle(modules, before, self.stop_seconds, "closed chat()")
            return took

        assert run(go()) < 2.0

    def test_cancel_midway(self, provider: Any) -> None:
        """Cancelling the reader after the first chunk: no chunk after, all work stops."""
        modules = self._modules(provider)

        async def go() -> None:
            before = asyncio.all_tasks()
            got: list[Any] = []
            first = asyncio.Event()

            async def read() -> None:
                ctx = self._context("Count from one to fifty in words.")
                async with contextlib.aclosing(provider.chat(ctx)) as stream:
                    async for chunk in stream:
                        got.append(chunk)
                        first.set()

            reader = asyncio.create_task(read())
            await asyncio.wait_for(first.wait(), 60)
            at_cancel = len(got)
            started = time.perf_counter()
            requested = reader.cancel()
            await asyncio.wait([reader], timeout=self.stop_seconds)
            assert reader.done(), "chat() went on after its reader was cancelled"
            assert time.perf_counter() - started < 2.0, "chat() took over 2 s to stop"
            assert len(got) == at_cancel, f"{len(got) - at_cancel} chunk(s) came after the cancellation"
            if requested:
                assert reader.cancelled(), "chat() swallowed the cancellation"
            await until_idle(modules, before, self.stop_seconds, "cancelled chat()")

        run(go())

    def test_tool_history_reaches_the_model(self, provider: Any, model_input: Callable[[], str] | None) -> None:
        booking = f"BK-{secrets.token_hex(3).upper()}"
        code = str(secrets.randbelow(90_000) + 10_000)
        ctx = self._context("What is the access code for my booking? Please look it up.")
        ctx.add_function_call("call_1", "get_access_code", json.dumps({"booking": booking}))
        ctx.add_function_output("call_1", "get_access_code", f"The access code is {code}.")

        async def go() -> str:
            return "".join([c.text async for c in provider.chat(ctx)])

        reply = run(go())
        assert model_input is not None or not self.scripted_model, (
            "a scripted backend cannot show it read the tool history: override `model_input`"
        )
        if model_input is not None:
            seen = model_input()
            assert isinstance(seen, str) and code in seen, "the tool result never reached the model"
            result_at = seen.index(code)
            for part, what in (("get_access_code", "name"), (booking, "arguments")):
                assert part in seen[:result_at], f"the tool call's {what} never reached the model before its result"
        if not self.scripted_model:
            assert code in reply, f"the model never saw the tool result {code!r}; it answered {reply!r}"
