"""What can the configured model answer? A tiny, fixed quiz (greedy decoding).

Usage: python plugins/llamacpp/scripts/eval_llamacpp.py [--model PATH] [--template PATH]

Prints each answer and whether it contains an expected word, then the score;
also counts tool calls made when a weather tool is offered (needs a chat
template that presents tools, e.g. ``--template`` with a Hermes-style one).
"""

from __future__ import annotations

import argparse
import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from vocalis.chat import ChatContext
from vocalis_llamacpp import LlamaCppLLM

SYSTEM = "You are a friendly voice assistant. Answer in one short sentence."
QUIZ = [
    ("Say hello.", ["hello", "hi"]),
    ("What is 2 plus 2?", ["4", "four"]),
    ("What is 10 minus 3?", ["7", "seven"]),
    ("What is the capital of France?", ["paris"]),
    ("What is the capital of Japan?", ["tokyo"]),
    ("What colour is the sky on a clear day?", ["blue"]),
    ("How many days are in a week?", ["7", "seven"]),
    ("What is the opposite of hot?", ["cold"]),
    ("Which animal says moo?", ["cow"]),
    ("What is the largest planet in our solar system?", ["jupiter"]),
]


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


async def main(args: argparse.Namespace) -> None:
    options: dict[str, Any] = {"temperature": 0.0, "max_tokens": 60}
    if args.model:
        options["model"] = args.model
    if args.template:
        options["chat_template"] = args.template
    llm = LlamaCppLLM(**options)
    right = 0
    for question, expected in QUIZ:
        ctx = ChatContext()
        ctx.add_message("system", SYSTEM)
        ctx.add_message("user", question)
        answer = "".join([c.text async for c in llm.chat(ctx)]).strip().replace("\n", " ")
        ok = any(word in re.findall(r"[a-z0-9]+", answer.lower()) for word in expected)
        right += ok
        print(f"{'ok ' if ok else 'BAD'} {question!r} -> {answer[:100]!r}")
    print(f"quiz: {right}/{len(QUIZ)}")

    calls = 0
    cities = ["Paris", "Rome", "Berlin", "Tokyo", "Madrid"]
    for city in cities:
        ctx = ChatContext()
        ctx.add_message("system", "You are a voice assistant. Use the tools to answer.")
        ctx.add_message("user", f"What is the weather in {city}?")
        chunks = [c async for c in llm.chat(ctx, tools=[WEATHER])]
        calls += bool(chunks[-1].tool_calls)
    print(f"tool calls when offered get_weather: {calls}/{len(cities)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--template", default=None)
    asyncio.run(main(parser.parse_args()))
