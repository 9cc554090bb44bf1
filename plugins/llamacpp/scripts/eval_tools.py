"""Tool-call accuracy of the local model with the built-in assistant's tools.

Usage: python plugins/llamacpp/scripts/eval_tools.py [--model PATH] [--tool-calls constrained|native]

Twenty typed requests: ten that need a tool (the time in a city, arithmetic,
unit conversion) and ten that don't. A call is correct when it names the
expected tool and the tool, run with the model's arguments, gives an answer
containing the expected value. Prints each request, the call made, and the
table row for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from vocalis.chat import ChatContext
from vocalis.session.assistant import INSTRUCTIONS, DefaultAssistant
from vocalis_llamacpp import LlamaCppLLM

NEEDS_TOOL = [
    ("What time is it in Tokyo?", "current_time", "In Tokyo"),
    ("What's the time in New York right now?", "current_time", "In New York"),
    ("What is the date today?", "current_time", "It is"),
    ("What is 17 times 23?", "calculate", "391"),
    ("Can you work out 1250 divided by 5?", "calculate", "250"),
    ("What's 48 plus 365?", "calculate", "413"),
    ("How many kilometers are 10 miles?", "convert_units", "16.09"),
    ("Convert 100 degrees fahrenheit to celsius.", "convert_units", "37.78"),
    ("How many pounds is 5 kilograms?", "convert_units", "11.02"),
    ("How many feet are in 3 meters?", "convert_units", "9.843"),
]
NO_TOOL = [
    "Hello, how are you?",
    "Thanks, that was helpful.",
    "Tell me a short joke.",
    "What is the capital of France?",
    "Can you recommend a good book?",
    "What's your name?",
    "Goodbye!",
    "Why is the sky blue?",
    "I'm feeling a bit tired today.",
    "What's a good name for a cat?",
]


async def main(llm: LlamaCppLLM) -> None:
    await llm.prewarm()
    agent = DefaultAssistant()
    tools = {tool.name: tool for tool in agent.tools}
    rows = []
    for question, expected_tool, expected in [(q, t, e) for q, t, e in NEEDS_TOOL] + [(q, None, None) for q in NO_TOOL]:
        ctx = ChatContext()
        ctx.add_message("system", INSTRUCTIONS)
        ctx.add_message("user", question)
        started = time.perf_counter()
        first: float | None = None
        calls = []
        async for chunk in llm.chat(ctx, tools=list(tools.values())):
            if first is None and (chunk.text or chunk.tool_calls):
                first = time.perf_counter() - started
            calls.extend(chunk.tool_calls)
        call = calls[0] if calls else None
        answer = ""
        if call is not None and call.name in tools:
            try:
                answer = str(await tools[call.name].bind(agent).invoke(call.arguments))
            except Exception as exc:
                answer = f"error: {exc}"
        correct = call is not None and call.name == expected_tool and expected is not None and expected in answer
        rows.append((question, expected_tool, call, correct, first or 0.0))
        shown = f"{call.name}({call.arguments}) -> {answer}" if call else "(no call)"
        print(f"{'OK ' if (correct or (expected_tool is None and call is None)) else 'BAD'} {question!r}: {shown}")
    right = sum(1 for r in rows if r[1] is not None and r[3])
    false = sum(1 for r in rows if r[1] is None and r[2] is not None)
    first_ms = statistics.median(r[4] for r in rows) * 1000
    print(
        json.dumps(
            {
                "correct_calls": right,
                "of": len(NEEDS_TOOL),
                "false_calls": false,
                "of_no_tool": len(NO_TOOL),
                "median_first_ms": round(first_ms),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--tool-calls", default="constrained")
    args = parser.parse_args()
    asyncio.run(main(LlamaCppLLM(model=args.model, tool_calls=args.tool_calls, _env_file=None)))
