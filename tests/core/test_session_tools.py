"""Tool calls inside a session: parallel, chained, failing, handoff, tool sources."""

from __future__ import annotations

import asyncio
import threading

from session_helpers import conversation

from vocalis import Agent, ToolContext, ToolError, function_tool
from vocalis.chat import FunctionCall, FunctionCallOutput
from vocalis.testing import FakeLLM, FakeResponse, FakeToolSource, run_virtual


def outputs(conv) -> dict[str, FunctionCallOutput]:
    return {i.call_id: i for i in conv.session.agent.chat_context.items if isinstance(i, FunctionCallOutput)}


def calls(conv) -> list[FunctionCall]:
    return [i for i in conv.session.agent.chat_context.items if isinstance(i, FunctionCall)]


def test_parallel_calls_run_concurrently_and_each_gets_one_output() -> None:
    started: list[float] = []

    @function_tool
    async def slow_lookup(item: str) -> str:
        """Look something up."""
        started.append(asyncio.get_running_loop().time())
        await asyncio.sleep(1.0)
        return f"{item}: found"

    async def main() -> None:
        llm = FakeLLM(
            [
                FakeResponse(
                    tool_calls=[
                        ("slow_lookup", '{"item": "a"}'),
                        ("slow_lookup", '{"item": "b"}'),
                        ("slow_lookup", '{"item": "c"}'),
                    ]
                ),
                "All three found.",
            ]
        )
        async with conversation(Agent("x", tools=[slow_lookup]), llm=llm) as conv:
            t0 = conv.now
            await conv.session.reply("look up a, b and c")
            assert conv.now - t0 < 2.5  # 1 s of tools in parallel + speech, not 3 s
        assert len(set(started)) == 1
        assert len(calls(conv)) == 3 and len(outputs(conv)) == 3
        assert sorted(o.output for o in outputs(conv).values()) == ["a: found", "b: found", "c: found"]
        second_request = llm.requests[1].chat_ctx
        assert sum(isinstance(i, FunctionCallOutput) for i in second_request.items) == 3

    run_virtual(main())


def test_chained_calls_and_step_limit() -> None:
    @function_tool
    def step(n: int) -> int:
        """Advance one step (a sync tool: runs in a worker thread)."""
        assert threading.current_thread() is not threading.main_thread()
        return n + 1

    async def main() -> None:
        llm = FakeLLM(
            [
                FakeResponse(tool_calls=[("step", '{"n": 1}')]),
                FakeResponse(tool_calls=[("step", '{"n": 2}')]),
                FakeResponse(tool_calls=[("step", '{"n": 3}')]),
                "Done at three.",
            ]
        )
        async with conversation(Agent("x", tools=[step]), llm=llm, max_tool_steps=2) as conv:
            await conv.session.reply("go")
        outs = list(outputs(conv).values())
        assert [o.output for o in outs[:2]] == ["2", "3"]
        # After two tool rounds the model is asked once more, without tools;
        # a call it makes anyway is not run but still gets exactly one output.
        assert [r.tools for r in llm.requests] == [["step"], ["step"], []]
        assert outs[2].is_error and "no more tool calls" in outs[2].output
        assert len(calls(conv)) == len(outs) == 3

    run_virtual(main())


def test_failing_malformed_unknown_and_hanging_tools_each_report_to_the_llm() -> None:
    @function_tool
    async def explode() -> str:
        """Always fails."""
        raise RuntimeError("database unreachable")

    @function_tool
    async def refuse() -> str:
        """Refuses politely."""
        raise ToolError("not allowed for this user")

    @function_tool
    async def hang() -> str:
        """Never returns."""
        await asyncio.Event().wait()
        return "never"

    @function_tool
    async def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    async def main() -> None:
        llm = FakeLLM(
            [
                FakeResponse(
                    tool_calls=[
                        ("explode", "{}"),
                        ("refuse", "{}"),
                        ("hang", "{}"),
                        ("add", '{"a": 1, "b": '),  # malformed JSON
                        ("add", '{"a": "one", "b": 2}'),  # schema violation
                        ("teleport", "{}"),  # unknown tool
                    ]
                ),
                "Sorry, several things went wrong.",
            ]
        )
        agent = Agent("x", tools=[explode, refuse, hang, add])
        async with conversation(agent, llm=llm, tool_timeout=3.0) as conv:
            await conv.session.reply("do everything")
            await conv.session.say("Still here.")
            await conv.silence(3.0)
        outs = list(outputs(conv).values())
        assert len(outs) == 6 and all(o.is_error for o in outs)
        text = {o.name + str(i): o.output for i, o in enumerate(outs)}
        joined = " | ".join(text.values())
        assert "database unreachable" in joined
        assert "not allowed for this user" in joined
        assert "timed out after 3 s" in joined
        assert "unknown tool 'teleport'" in joined
        assert joined.count("invalid arguments") == 2
        sources = {e["source"] for e in conv.errors()}
        assert {"tool:explode", "tool:hang"} <= sources
        assert "Still here." in conv.agent_turns()

    run_virtual(main())


def test_interrupted_tool_call_still_records_exactly_one_output() -> None:
    runs: list[str] = []

    @function_tool
    async def book_table(time: str) -> str:
        """Book a table."""
        runs.append(time)
        await asyncio.sleep(2.0)
        return f"booked at {time}"

    async def main() -> None:
        llm = FakeLLM(
            [FakeResponse("One moment.", tool_calls=[("book_table", '{"time": "8pm"}')]), "Your table is booked."]
        )
        async with conversation(Agent("x", tools=[book_table]), llm=llm) as conv:
            handle = await conv.session.reply("book", wait_for_playback=False)
            await asyncio.sleep(1.0)
            conv.session.interrupt()
            await handle
            assert handle.interrupted
            assert conv.session.tools.running == 1
            await asyncio.sleep(1.5)
            assert conv.session.tools.running == 0
        assert runs == ["8pm"]
        outs = list(outputs(conv).values())
        assert [o.output for o in outs] == ["booked at 8pm"]
        assert len(llm.requests) == 1  # no follow-up reply after the interruption
        assert conv.session.agent_state.value == "closing"

    run_virtual(main())


def test_tool_returning_an_agent_hands_over_with_context() -> None:
    events: list[str] = []

    class Billing(Agent):
        def __init__(self) -> None:
            super().__init__("You handle billing.", inherit_context=True)

        async def on_enter(self) -> None:
            events.append("billing.on_enter")
            await self.session.say("Billing here, how can I help?")

    class Front(Agent):
        def __init__(self) -> None:
            super().__init__("You route calls.")

        async def on_exit(self) -> None:
            events.append("front.on_exit")

        @function_tool
        async def transfer_to_billing(self, context: ToolContext) -> Agent:
            """Transfer the caller to billing."""
            events.append(f"transfer by {context.tool_name}")
            return Billing()

    async def main() -> None:
        llm = FakeLLM([FakeResponse("Transferring you.", tool_calls=[("transfer_to_billing", "{}")])])
        async with conversation(Front(), ["I have a billing question"], llm=llm) as conv:
            await conv.user_speaks(0.8)
            await conv.wait_for_agent_turn(2)
            agent = conv.session.agent
        assert isinstance(agent, Billing)
        assert events == ["transfer by transfer_to_billing", "front.on_exit", "billing.on_enter"]
        assert conv.named("agent_handoff") == [{"from": "Front", "to": "Billing"}]
        texts = [getattr(i, "content", "") for i in agent.chat_context.items]
        assert texts[0] == "You handle billing."
        assert "I have a billing question" in texts
        assert "You route calls." not in texts
        assert conv.agent_turns() == ["Transferring you.", "Billing here, how can I help?"]

    run_virtual(main())


def test_tool_source_tools_are_offered_and_callable() -> None:
    @function_tool
    async def search_docs(query: str) -> str:
        """Search documentation."""
        return f"3 results for {query}"

    async def main() -> None:
        source = FakeToolSource([search_docs])
        broken = FakeToolSource(fail_start=ConnectionError("server not found"))
        llm = FakeLLM([FakeResponse(tool_calls=[("search_docs", '{"query": "vad"}')]), "Found three."])
        agent = Agent("x", mcp_servers=[source, broken])
        async with conversation(agent, llm=llm) as conv:
            await conv.session.reply("search")
        assert llm.requests[0].tools == ["search_docs"]
        assert [o.output for o in outputs(conv).values()] == ["3 results for vad"]
        assert conv.errors()[0]["source"] == "tools:fake"
        assert "server not found" in conv.errors()[0]["message"]
        assert source.started == 1 and source.closed == 1 and broken.closed == 0

    run_virtual(main())


def test_method_tools_on_agent_subclass_are_found() -> None:
    class Shop(Agent):
        def __init__(self) -> None:
            super().__init__("Sell things.")
            self.cart: list[str] = []

        @function_tool
        async def add_to_cart(self, item: str) -> str:
            """Add an item to the cart."""
            self.cart.append(item)
            return f"{len(self.cart)} items"

    async def main() -> None:
        llm = FakeLLM([FakeResponse(tool_calls=[("add_to_cart", '{"item": "tea"}')]), "Added."])
        shop = Shop()
        assert [t.name for t in shop.tools] == ["add_to_cart"]
        async with conversation(shop, llm=llm) as conv:
            await conv.session.reply("add tea")
        assert shop.cart == ["tea"]

    run_virtual(main())


def test_tool_source_listing_plain_functions_and_junk() -> None:
    async def lookup(term: str) -> str:
        """Look a term up."""
        return f"{term}: defined"

    async def main() -> None:
        source = FakeToolSource([lookup, object()])  # type: ignore[list-item]
        llm = FakeLLM([FakeResponse(tool_calls=[("lookup", '{"term": "vad"}')]), "Done."])
        async with conversation(Agent("x", mcp_servers=[source]), llm=llm) as conv:
            await conv.session.reply("look up vad")
        assert [o.output for o in outputs(conv).values()] == ["vad: defined"]
        assert [e["source"] for e in conv.errors()] == ["tools:fake"]
        assert "unusable tool" in conv.errors()[0]["message"]

    run_virtual(main())


def test_duplicate_tool_names_keep_the_agents_tool() -> None:
    @function_tool
    async def search(query: str) -> str:
        """Agent's own search."""
        return "agent result"

    @function_tool(name="search")
    async def other_search(query: str) -> str:
        """Source's search."""
        return "source result"

    async def main() -> None:
        llm = FakeLLM([FakeResponse(tool_calls=[("search", '{"query": "q"}')]), "Done."])
        agent = Agent("x", tools=[search], mcp_servers=[FakeToolSource([other_search])])
        async with conversation(agent, llm=llm) as conv:
            await conv.session.reply("search")
        assert [o.output for o in outputs(conv).values()] == ["agent result"]
        assert llm.requests[0].tools == ["search"]

    run_virtual(main())
